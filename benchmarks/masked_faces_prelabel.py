"""How well a new masked-faces project is pre-labeled before anyone corrects it: both starter models against the
face parser alone, on the masked-faces test split.

Copies the first N test photos into a fresh masked-faces project, pre-labels it the way the studio does (the
default: the starter parser for the face, the starter segmenter for the mask), scores the predictions against the
data set's masks, then pre-labels again with the parser alone and scores that. Prints one table.

    python benchmarks/masked_faces_prelabel.py --data DATA/maskedfaces3 --images 50
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from faceparse.core.imageio import load_mask
from faceparse.core.metrics import confusion_matrix, scores_from_confusion
from faceparse.core.model_resolver import starter_model_path
from faceparse.core.prelabel import PrelabelJob
from faceparse.core.store import ProjectStore


def test_photos(data: Path, count: int) -> list[Path]:
    stems = [r["stem"] for r in csv.DictReader(open(data / "split.csv")) if r["split"] == "test"][:count]
    return [next((data / "images").glob(stem + ".*")) for stem in stems]


def score(store: ProjectStore, masks: Path) -> dict:
    classes = list(store.schema.classes)
    cm = np.zeros((len(classes), len(classes)), np.int64)
    for record in store.images():
        predicted = store.predicted_mask(record.id)
        truth = load_mask(masks / f"{Path(record.relpath).stem}.png")
        cm += confusion_matrix(truth, predicted, len(classes))
    return scores_from_confusion(cm, classes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the prepared masked-faces data set")
    ap.add_argument("--images", type=int, default=50, help="how many test photos (default 50)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    photos = test_photos(args.data, args.images)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, (label, model) in enumerate((("parser + mask segmenter (default)", None),
                                            ("parser alone", str(starter_model_path("parser"))))):
            folder = Path(tmp) / f"project{n}"
            folder.mkdir()
            for photo in photos:
                shutil.copy(photo, folder / photo.name)
            with ProjectStore.create(folder, "masked-faces") as store:
                store.scan()
                result = PrelabelJob(store, model, threads=args.threads).run()
                scores = score(store, args.data / "masks")
            rows.append((label, result, scores))
            print(f"{label}: {result.predicted} images in {result.seconds:.1f} s", file=sys.stderr, flush=True)
    print(f"\n{len(photos)} masked-faces test photos, pre-labeled before any correction (IoU per class)\n")
    print("| models | face IoU | face_mask IoU | background IoU | pixel accuracy | images/s |")
    print("|---|---|---|---|---|---|")
    for label, result, s in rows:
        iou = s["per_class_iou"]
        print(f"| {label} | {100 * (iou['face'] or 0):.1f} | {100 * (iou['face_mask'] or 0):.1f} | "
              f"{100 * (iou['background'] or 0):.1f} | {100 * s['pixel_accuracy']:.1f} | "
              f"{result.images_per_second:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
