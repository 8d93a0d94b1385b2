"""Every format brings an export back into a copy of its project, whatever the image paths look like: folders
whose names are split names, and file names that hold the "__" a flat layout joins folders with."""

import shutil

import numpy as np
import pytest
from faceparse.core.export import export_dataset
from faceparse.core.formats import format_names
from faceparse.core.importer import import_dataset
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import draw_face
from PIL import Image

LAYOUTS = {"double-underscores": ("a.png", "sub/b.png", "sub/c__d.png", "x/y/z.jpg"),
           "split-named-folders": ("train/a.png", "val/a.png", "test/b.png")}


def make(folder, relpaths):
    masks = {}
    for i, relpath in enumerate(relpaths):
        image, mask = draw_face(i, size=64, schema="lapa")
        (folder / relpath).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / relpath)
        masks[relpath] = mask
    return masks


@pytest.mark.parametrize("fmt", format_names())
@pytest.mark.parametrize("layout", LAYOUTS)
def test_export_then_import_restores_every_mask(tmp_path, fmt, layout):
    masks = make(tmp_path / "faces", LAYOUTS[layout])
    with ProjectStore.create(tmp_path / "faces", "lapa") as store:
        store.scan()
        for rec in store.images():
            store.save_corrected(rec.id, masks[rec.relpath])
        export_dataset(store, tmp_path / "out", fmt, only="all")
    shutil.copytree(tmp_path / "faces", tmp_path / "copy", ignore=shutil.ignore_patterns(".faceparse"))
    with ProjectStore.create(tmp_path / "copy", "lapa") as store:
        store.scan()
        report = import_dataset(store, tmp_path / "out", fmt)
        assert report.imported == len(masks)
        for rec in store.images():
            assert np.array_equal(store.corrected_mask(rec.id), masks[rec.relpath]), rec.relpath
