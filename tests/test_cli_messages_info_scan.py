"""`info` and `scan` name what they count: unreadable photos, checked images whose mask file is missing or empty,
and every photo a scan counts as changed."""

import json
import os

import numpy as np
import pytest
from faceparse.app.cli import main
from faceparse.core.store import ProjectStore
from PIL import Image


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _photo(path, shade):
    Image.fromarray(np.full((12, 10, 3), shade, np.uint8)).save(path)


@pytest.fixture
def project(tmp_path):
    """Four photos, the first three with corrected masks; details read, so every photo is hashed."""
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(4):
        _photo(folder / f"f{i}.png", 40 * i)
    with ProjectStore.create(folder) as store:
        store.scan()
        store.fill_details()
        for rec in store.images()[:3]:
            store.save_corrected(rec.id, np.ones((12, 10), np.uint8))
    return folder


def test_info_names_unreadable_photos_and_lists_them_all_in_json(project, capsys):
    for i in range(12):
        (project / f"broken{i:02}.png").write_bytes(b"not a picture")
    run(capsys, "scan", project, "--details")
    out = run(capsys, "info", project)
    assert "Unreadable images: 12" in out
    assert "  broken00.png: not a recognised image" in out and "broken09.png" in out
    assert "broken11.png" not in out and "… and 2 more (all of them in --json)" in out
    summary = json.loads(run(capsys, "info", project, "--json"))
    assert summary["unreadable"] == 12
    assert [u["relpath"] for u in summary["unreadable_images"]] == [f"broken{i:02}.png" for i in range(12)]
    assert "not a recognised image" in summary["unreadable_images"][0]["error"]


def test_info_names_checked_images_whose_mask_file_is_missing_or_empty(project, capsys):
    with ProjectStore.open(project) as store:
        first, second, third, _ = store.images()
        store.mask_path("corrected", first.id).write_bytes(b"")
        store.mask_path("corrected", second.id).unlink()
    out = run(capsys, "info", project)
    assert "Checked images whose mask file is missing or empty: 2" in out
    assert "  f0.png (corrected): its mask file is empty" in out
    assert "  f1.png (corrected): its mask file is missing" in out and "f2.png (corrected)" not in out
    summary = json.loads(run(capsys, "info", project, "--json"))
    assert summary["checked_mask_problems"] == [
        {"relpath": "f0.png", "status": "corrected", "problem": "its mask file is empty"},
        {"relpath": "f1.png", "status": "corrected", "problem": "its mask file is missing"}]


def test_scan_names_every_photo_it_counts_as_changed(project, capsys):
    _photo(project / "f0.png", 7)  # another picture under a checked mask
    (project / "f2.png").write_bytes(b"garbage" * 10)  # a checked photo overwritten with junk
    os.utime(project / "f3.png", ns=(1, 1))  # only its time changed
    out = run(capsys, "scan", project)
    assert "3 changed" in out
    changed = out.split("Changed photos:\n", 1)[1].split("\n")[:3]
    assert changed[0] == "  f0.png" and changed[2] == "  f3.png"
    assert changed[1].startswith("  f2.png: not a recognised image")
    assert "1 photo changed since their masks were checked" in out
