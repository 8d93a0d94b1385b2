"""CelebAMask-HQ readers open `CelebA-HQ-img/<n>.jpg`: a JPEG photo is exported under that name whatever its own
suffix, other photos keep theirs, and the mapping still brings every mask back to its photo."""

import shutil

import numpy as np
from faceparse.core.export import export_dataset
from faceparse.core.importer import import_dataset
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import draw_face
from PIL import Image

NAMES = ("a.jpeg", "b.JPG", "c.png", "d.jfif")


def make(folder):
    folder.mkdir()
    truth = {}
    for i, name in enumerate(NAMES):
        picture, mask = draw_face(40 + i, 48, background="none")
        Image.fromarray(picture).save(folder / name, format="PNG" if name.endswith(".png") else "JPEG")
        truth[name] = mask
    with ProjectStore.create(folder) as store:
        store.scan()
        for rec in store.images():
            store.save_corrected(rec.id, truth[rec.relpath])
    return truth


def test_jpeg_photos_are_numbered_jpg_and_come_back(tmp_path):
    truth = make(tmp_path / "faces")
    with ProjectStore.open(tmp_path / "faces") as store:
        export_dataset(store, tmp_path / "dataset", "celebamask-hq", split=(1, 0, 0))
    photos = sorted(p.name for p in (tmp_path / "dataset" / "CelebA-HQ-img").iterdir())
    assert photos == ["0.jpg", "1.jpg", "2.png", "3.jpg"]
    assert (tmp_path / "dataset" / "CelebA-HQ-img" / "1.jpg").read_bytes() == (tmp_path / "faces" / "b.JPG").read_bytes()
    mapping = (tmp_path / "dataset" / "image_mapping.txt").read_text().splitlines()
    assert mapping[1:] == [f"{i}\t{name}" for i, name in enumerate(NAMES)]

    shutil.copytree(tmp_path / "faces", tmp_path / "copy", ignore=shutil.ignore_patterns(".faceparse"))
    with ProjectStore.create(tmp_path / "copy") as target:
        target.scan()
        report = import_dataset(target, tmp_path / "dataset", "celebamask-hq")
        assert report.imported == len(NAMES) and not report.problems
        for rec in target.images():
            assert np.array_equal(target.corrected_mask(rec.id), truth[rec.relpath]), rec.relpath
