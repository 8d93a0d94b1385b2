"""Only an image a person checked is exported from its corrected mask file: a corrected image whose file went
missing is left out (not exported with the model's guess as a person's), and a file left behind for a predicted
image is not counted as anyone's correction."""

import json

import numpy as np
from faceparse.core.export import export_dataset
from faceparse.core.store import ProjectStore
from PIL import Image

SIZE = 8


def labelled_project(folder):
    """a.png corrected, b.png corrected, c.png predicted; every prediction is all 2, every correction all 1."""
    for i, name in enumerate(["a.png", "b.png", "c.png"]):
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((SIZE, SIZE, 3), 40 * i, np.uint8)).save(folder / name)
    store = ProjectStore.create(folder)
    store.scan()
    for rec in store.images():
        store.save_predicted(rec.id, np.full((SIZE, SIZE), 2, np.uint8), "v1")
        if rec.relpath != "c.png":
            store.save_corrected(rec.id, np.ones((SIZE, SIZE), np.uint8))
    return store


def test_a_corrected_image_whose_mask_file_is_gone_is_left_out_with_its_reason(tmp_path):
    with labelled_project(tmp_path / "faces") as store:
        store.mask_path("corrected", store.find("b.png").id).unlink()
        result = export_dataset(store, tmp_path / "out", "index-png", split=(1, 0, 0))
    assert result.count == 1
    assert result.skipped == ["b.png: status corrected but its corrected mask file is missing"]
    assert sorted(p.name for p in (tmp_path / "out" / "masks" / "train").iterdir()) == ["a.png"]


def test_a_corrected_mask_file_left_behind_for_a_predicted_image_is_not_a_correction(tmp_path):
    with labelled_project(tmp_path / "faces") as store:
        c = store.find("c.png")
        Image.fromarray(np.full((SIZE, SIZE), 5, np.uint8)).save(store.mask_path("corrected", c.id))
        assert np.array_equal(store.current_mask(c.id), np.full((SIZE, SIZE), 2))
        result = export_dataset(store, tmp_path / "out", "index-png", only="all", split=(1, 0, 0))
    assert result.count == 3 and result.corrected_by_hand == 2
    exported = np.array(Image.open(tmp_path / "out" / "masks" / "train" / "c.png"))
    assert np.array_equal(exported, np.full((SIZE, SIZE), 2))
    card = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert card["corrected_by_hand"] == 2
