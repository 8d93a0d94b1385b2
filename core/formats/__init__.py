"""Dataset formats: one module per layout, each with an exporter and a label reader, found here by name.

`export.py` and `importer.py` do the work common to every format (choosing images, splitting, mapping schemas,
the temporary folder, checking labels before writing); a format module only knows its files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from faceparse.core.formats import celebamask, coco, index_png, labelme, lapa, yolo
from faceparse.core.formats.base import Exporter, LabelSet
from faceparse.core.schemas import LabelSchema


@dataclass(frozen=True)
class DatasetFormat:
    name: str
    title: str
    exporter: type[Exporter]
    read_labels: Callable[[Path, LabelSchema], LabelSet]
    """Describe every label under a folder; the schema says what mask indices mean for index-mask layouts."""
    exact: bool
    """Whether export then import gives back the masks pixel for pixel by construction."""
    default_schema: str | None = None
    """What the indices mean when the dataset carries no schema.json (LaPa files are LaPa's classes)."""
    export_schema: str | None = None
    """The schema an export writes unless told otherwise, when the layout's readers take the label values as that
    schema's classes (LaPa's 0-10); None: the project's own."""
    preferred_schema: str | None = None
    """The schema an export writes unless told otherwise when the project's schema maps to it (CelebAMask-HQ's
    readers take its class names and values); a project whose schema does not map to it writes its own."""
    reads_file: bool = False
    """Whether import also takes a single label file (a COCO JSON) instead of a dataset folder."""
    names_classes: bool = True
    """Whether the labels name their classes (COCO categories, LabelMe labels, YOLO's names) rather than leaving
    bare index values to a schema."""


FORMATS: dict[str, DatasetFormat] = {f.name: f for f in (
    DatasetFormat("celebamask-hq", "CelebAMask-HQ (per-class masks)", celebamask.CelebAMaskExporter,
                  celebamask.read_labels, exact=True, default_schema="celebamask-hq",
                  preferred_schema="celebamask-hq", names_classes=False),
    DatasetFormat("lapa", "LaPa (images/ and labels/ per split)", lapa.LapaExporter, lapa.read_labels, exact=True,
                  default_schema="lapa", export_schema="lapa", names_classes=False),
    DatasetFormat("index-png", "Index PNG masks with colour previews", index_png.IndexPngExporter,
                  index_png.read_labels, exact=True, names_classes=False),
    DatasetFormat("coco", "COCO JSON (RLE masks)", coco.CocoExporter, coco.read_labels, exact=True, reads_file=True),
    DatasetFormat("coco-polygons", "COCO JSON (polygons)", coco.CocoPolygonExporter, coco.read_labels, exact=True,
                  reads_file=True),
    DatasetFormat("labelme", "LabelMe JSON (polygons)", labelme.LabelmeExporter, labelme.read_labels, exact=False),
    DatasetFormat("yolo", "YOLO segmentation (polygons)", yolo.YoloExporter, yolo.read_labels, exact=False),
)}


def get_format(name: str) -> DatasetFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown dataset format {name!r}; formats: {', '.join(FORMATS)}") from None


def format_names() -> list[str]:
    return list(FORMATS)
