"""Export destination and selection edge cases: stale predictions, another tool's dataset.json, the folder's mode,
unwritable or long destinations, symlinks, crashed exports' leftovers, and rotated photos kept losslessly."""

import json
import os
import re
import stat

import numpy as np
import pytest
from faceparse.core.export import PARTIAL_MARKER, ExportError, export_dataset
from faceparse.core.formats.base import copy_image
from faceparse.core.imageio import load_rgb
from faceparse.core.store import ProjectStore
from PIL import Image

try:
    import fcntl
except ImportError:
    fcntl = None

SIZE = 8


def put_photo(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def face_mask():
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[2:6, 2:6] = 1
    return mask


def open_project(folder, predicted=False):
    folder.mkdir()
    for i in range(2):
        put_photo(folder / f"face{i}.png", seed=i)
    store = ProjectStore.create(folder)
    store.scan()
    for rec in store.images():
        if predicted:
            store.save_predicted(rec.id, face_mask(), "v1")
        else:
            store.save_corrected(rec.id, face_mask())
    return store


@pytest.fixture
def store(tmp_path):
    with open_project(tmp_path / "faces") as store:
        yield store


@pytest.fixture
def predicted_store(tmp_path):
    with open_project(tmp_path / "faces", predicted=True) as store:
        yield store


def replace_photo(store, name):
    path = store.root / name
    put_photo(path, seed=99)
    later = path.stat().st_mtime_ns + 5 * 10**9
    os.utime(path, ns=(later, later))


def hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def exported_masks(out):
    return sorted(p.name for p in (out / "masks").rglob("*.png"))


def test_a_prediction_of_a_replaced_and_rescanned_photo_is_left_out(predicted_store, tmp_path):
    replace_photo(predicted_store, "face0.png")
    predicted_store.scan()
    assert predicted_store.find("face0.png").hash_before is not None  # same byte size: not yet known to differ
    result = export_dataset(predicted_store, tmp_path / "out", "index-png", only="all", split=(1, 0, 0))
    assert result.count == 1 and exported_masks(tmp_path / "out") == ["face1.png"]
    assert len(result.skipped) == 1 and "face0.png: the photo changed after the model predicted" in result.skipped[0]
    predicted_store.settle_touched()
    assert predicted_store.find("face0.png").model_version is None
    again = export_dataset(predicted_store, tmp_path / "again", "index-png", only="all", split=(1, 0, 0))
    assert exported_masks(tmp_path / "again") == ["face1.png"] and "face0.png" in again.skipped[0]


def test_a_prediction_of_a_photo_replaced_since_the_scan_is_left_out(predicted_store, tmp_path):
    replace_photo(predicted_store, "face1.png")
    result = export_dataset(predicted_store, tmp_path / "out", "index-png", only="all", split=(1, 0, 0))
    assert exported_masks(tmp_path / "out") == ["face0.png"]
    assert [s.split(":")[0] for s in result.skipped] == ["face1.png"]


def test_a_reviewed_prediction_of_a_merely_touched_photo_is_exported(predicted_store, tmp_path):
    rec = predicted_store.find("face1.png")
    predicted_store.set_status(rec.id, "reviewed")
    path = predicted_store.root / "face1.png"
    later = path.stat().st_mtime_ns + 5 * 10**9
    os.utime(path, ns=(later, later))
    result = export_dataset(predicted_store, tmp_path / "out", "index-png", only="all", split=(1, 0, 0))
    assert exported_masks(tmp_path / "out") == ["face0.png", "face1.png"] and result.skipped == []
    assert not (tmp_path / "out" / PARTIAL_MARKER).exists()


def test_exports_name_their_generator(store, tmp_path):
    export_dataset(store, tmp_path / "out", "coco", split=(1, 0, 0))
    assert json.loads((tmp_path / "out" / "dataset.json").read_text())["generator"] == "FaceParse Studio"


def test_overwrite_refuses_another_tools_folder_with_a_dataset_json(store, tmp_path):
    nnunet = tmp_path / "Dataset001_Faces"
    (nnunet / "imagesTr").mkdir(parents=True)
    (nnunet / "imagesTr" / "face_0000.png").write_bytes(b"precious")
    (nnunet / "dataset.json").write_text(json.dumps({"channel_names": {"0": "RGB"}, "labels": {"background": 0},
                                                     "numTraining": 1, "file_ending": ".png"}))
    with pytest.raises(ExportError, match="not an earlier export: its dataset.json was written by another"):
        export_dataset(store, nnunet, "coco", split=(1, 0, 0), overwrite=True)
    assert (nnunet / "imagesTr" / "face_0000.png").read_bytes() == b"precious"
    assert hidden(tmp_path) == []


def test_overwrite_replaces_an_export_made_before_the_generator_entry(store, tmp_path):
    out = tmp_path / "out"
    export_dataset(store, out, "coco", split=(1, 0, 0))
    card = json.loads((out / "dataset.json").read_text())
    card.pop("generator", None)
    card.pop("contents", None)  # recorded only by exports that name their generator
    (out / "dataset.json").write_text(json.dumps(card))
    export_dataset(store, out, "index-png", split=(1, 0, 0), overwrite=True)
    assert exported_masks(out) == ["face0.png", "face1.png"] and not (out / "annotations").exists()


def test_the_export_folder_gets_a_plain_folders_mode_or_the_replaced_ones(store, tmp_path):
    (tmp_path / "shared").mkdir()
    os.chmod(tmp_path / "shared", 0o775)
    umask = os.umask(0o027)
    try:
        export_dataset(store, tmp_path / "new", "index-png", split=(1, 0, 0))
        export_dataset(store, tmp_path / "shared", "index-png", split=(1, 0, 0))
    finally:
        os.umask(umask)
    assert mode(tmp_path / "new") == 0o750
    assert mode(tmp_path / "shared") == 0o775


def test_a_file_in_the_destinations_path_is_an_export_error(store, tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(ExportError, match="afile is a file, not a folder"):
        export_dataset(store, tmp_path / "afile" / "out", "coco", split=(1, 0, 0))


def test_a_long_destination_name_leaves_room_for_the_hidden_folder(store, tmp_path):
    out = tmp_path / ("d" * 245)
    result = export_dataset(store, out, "coco", split=(1, 0, 0))
    assert result.count == 2 and (out / "dataset.json").is_file()
    assert hidden(tmp_path) == []


def test_a_symlinked_destination_is_refused(store, tmp_path):
    export_dataset(store, tmp_path / "v1", "index-png", split=(1, 0, 0))
    os.symlink("v1", tmp_path / "current")
    with pytest.raises(ExportError, match="is a symbolic link"):
        export_dataset(store, tmp_path / "current", "coco", split=(1, 0, 0), overwrite=True)
    assert os.readlink(tmp_path / "current") == "v1"
    assert exported_masks(tmp_path / "v1") == ["face0.png", "face1.png"]
    assert hidden(tmp_path) == []


def crash_leftovers(out):
    """Hidden folders as a crashed export to `out` leaves them: `.<name>.<8 hex digits>.partial` holding the
    partial-export marker, and `.old` holding the earlier export it was replacing."""
    names = []
    for n, kind in enumerate(("partial", "partial", "old")):
        folder = out.parent / f".{out.name}.{n:08x}.{kind}"
        folder.mkdir()
        (folder / "half.png").write_bytes(b"half")
        if kind == "partial":
            (folder / PARTIAL_MARKER).touch()
        else:
            (folder / "dataset.json").write_text(json.dumps({"generator": "FaceParse Studio"}))
        names.append(folder.name)
    return sorted(names)


def test_the_hidden_folder_has_the_shape_of_a_leftover(store, tmp_path):
    seen = []
    export_dataset(store, tmp_path / "out", "index-png", split=(1, 0, 0),
                   progress=lambda done, total: seen.extend(hidden(tmp_path)))
    assert seen and all(re.fullmatch(r"\.out\.[0-9a-f]{8}\.partial", name) for name in seen)


@pytest.mark.skipif(fcntl is None, reason="leftovers are removed only where flock exists")
def test_a_crashed_exports_leftovers_are_removed_by_the_next_export(store, tmp_path):
    crash_leftovers(tmp_path / "out")
    others = [".out.backup", ".other.abcd1234.partial", ".out.abcd1234.partial.keep", ".out.20240101.old",
              ".out.abcd1234.partial"]
    for name in others:
        (tmp_path / name).mkdir()
        (tmp_path / name / "precious.txt").write_text("the user's")
    export_dataset(store, tmp_path / "out", "index-png", split=(1, 0, 0))
    assert hidden(tmp_path) == sorted(others)


@pytest.mark.skipif(fcntl is None, reason="leftovers are removed only where flock exists")
def test_leftovers_stay_while_another_export_runs_beside_them(store, tmp_path):
    leftovers = crash_leftovers(tmp_path / "out")
    running = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(running, fcntl.LOCK_SH)
        export_dataset(store, tmp_path / "out", "index-png", split=(1, 0, 0))
        assert hidden(tmp_path) == leftovers
    finally:
        os.close(running)
    export_dataset(store, tmp_path / "out", "coco", split=(1, 0, 0), overwrite=True)
    assert hidden(tmp_path) == []


@pytest.mark.skipif(fcntl is None, reason="leftovers are removed only where flock exists")
def test_a_lock_someone_else_never_releases_ends_the_export_with_a_reason(store, tmp_path, monkeypatch):
    import faceparse.core.export as export_module

    monkeypatch.setattr(export_module, "SHARED_LOCK_WAIT_S", 0.3)
    holder = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(ExportError, match="another program has held a lock on"):
            export_dataset(store, tmp_path / "out", "index-png", split=(1, 0, 0))
        assert not (tmp_path / "out").exists() and hidden(tmp_path) == []
    finally:
        os.close(holder)
    export_dataset(store, tmp_path / "out", "index-png", split=(1, 0, 0))
    assert (tmp_path / "out").is_dir()


@pytest.mark.skipif(fcntl is None, reason="leftovers are removed only where flock exists")
def test_cancelling_while_waiting_for_the_lock_ends_the_export_at_once(store, tmp_path):
    import threading

    from faceparse.core.export import ExportCancelled

    cancel = threading.Event()
    holder = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        threading.Timer(0.2, cancel.set).start()
        with pytest.raises(ExportCancelled, match="while waiting for a lock"):
            export_dataset(store, tmp_path / "out", "index-png", split=(1, 0, 0), cancel=cancel)
    finally:
        os.close(holder)
    assert hidden(tmp_path) == []


def rotated_source(path, pixels, **options):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, exif=exif.tobytes(), **options)


def test_a_rotated_lossless_webp_stays_lossless(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    rotated_source(tmp_path / "face.webp", pixels, lossless=True)
    copy_image(tmp_path / "face.webp", tmp_path / "out" / "face.webp")
    with Image.open(tmp_path / "out" / "face.webp") as copied:
        assert copied.size == (6, 10) and copied.getexif().get(0x0112, 1) == 1
        assert np.array_equal(np.asarray(copied.convert("RGB")), load_rgb(tmp_path / "face.webp"))


def test_a_rotated_rgba_photo_keeps_its_alpha(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (6, 10, 4), dtype=np.uint8)
    rotated_source(tmp_path / "face.png", pixels)
    copy_image(tmp_path / "face.png", tmp_path / "out" / "face.png")
    with Image.open(tmp_path / "out" / "face.png") as copied:
        assert copied.mode == "RGBA"
        assert np.array_equal(np.asarray(copied), np.rot90(pixels, -1))
