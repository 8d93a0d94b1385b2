"""Export plumbing: which images, the seeded split, the target schema, the dataset card, the destination folder
that appears only when complete, progress and cancel."""

import errno
import json
import threading

import numpy as np
import pytest
from faceparse.core.export import (
    ExportCancelled,
    ExportError,
    assign_splits,
    export_dataset,
    parse_split,
    select_images,
)
from faceparse.core.formats import lapa
from faceparse.core.formats.base import copy_image
from faceparse.core.schemas import get_schema
from faceparse.core.store import ProjectStore
from PIL import Image
from test_formats_support import MODEL_VERSION, exported, make_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("options") / "faces"
    truth = make_project(root)
    store = ProjectStore.open(root)
    yield store, truth
    store.close()


def leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("only", ["reviewed", "corrected", "all"])
def test_selection_by_status(project, tmp_path, only):
    store, _ = project
    assert {r.relpath for r in select_images(store, only)} == exported(only=only)
    result = export_dataset(store, tmp_path / "out", "index-png", only=only)
    assert result.count == len(exported(only=only))
    masks = {p.relative_to(tmp_path / "out" / "masks").as_posix().split("/", 1)[1]
             for p in (tmp_path / "out" / "masks").rglob("*.png")}
    assert masks == {n for n in exported(only=only)}


def test_parse_split():
    assert parse_split("0.8,0.1,0.1") == (0.8, 0.1, 0.1)
    assert parse_split("0.7, 0.3") == (0.7, 0.3, 0.0)
    thirds = parse_split("0.333,0.333,0.333")
    assert thirds == pytest.approx((1 / 3, 1 / 3, 1 / 3)) and sum(thirds) == pytest.approx(1.0, abs=1e-12)
    for bad in ("0.8,0.1", "a,b,c", "0.5,0.6,-0.1", "1,2,3,4", "0.33,0.33,0.33"):
        with pytest.raises(ValueError):
            parse_split(bad)


def test_split_sizes_follow_the_fractions_and_the_seed():
    keys = [f"img{i}" for i in range(1000)]
    splits = assign_splits(keys, (0.8, 0.1, 0.1), seed=7)
    counts = {s: splits.count(s) for s in ("train", "val", "test")}
    assert counts == {"train": 800, "val": 100, "test": 100}
    assert assign_splits(keys, (0.8, 0.1, 0.1), seed=7) == splits
    assert assign_splits(keys, (0.8, 0.1, 0.1), seed=8) != splits
    assert set(assign_splits(keys, (1, 0, 0), seed=1)) == {"train"}
    assert set(assign_splits(keys, (0, 0, 1), seed=1)) == {"test"}


def test_duplicates_stay_in_one_split():
    groups = [f"photo{i // 3}" for i in range(300)]
    splits = assign_splits(groups, (0.6, 0.2, 0.2), seed=0)
    by_group = {}
    for group, split in zip(groups, splits, strict=True):
        by_group.setdefault(group, set()).add(split)
    assert all(len(s) == 1 for s in by_group.values())
    assert abs(splits.count("train") - 180) <= 3


def test_split_of_many_images_is_fast():
    import time

    keys = [f"img{i}" for i in range(200_000)]
    started = time.process_time()
    assign_splits(keys, (0.8, 0.1, 0.1), seed=0)
    assert time.process_time() - started < 5


def test_same_seed_same_split_files(project, tmp_path):
    store, _ = project
    first = export_dataset(store, tmp_path / "a", "celebamask-hq", only="all", split="0.6,0.2,0.2", seed=5)
    export_dataset(store, tmp_path / "b", "celebamask-hq", only="all", split="0.6,0.2,0.2", seed=5)
    for split in ("train", "val", "test"):
        assert (tmp_path / "a" / f"{split}.txt").read_text() == (tmp_path / "b" / f"{split}.txt").read_text()
    assert first.splits == {"train": 6, "val": 2, "test": 2}
    others = []
    for seed in range(6, 12):
        export_dataset(store, tmp_path / f"s{seed}", "celebamask-hq", only="all", split="0.6,0.2,0.2", seed=seed)
        others.append((tmp_path / f"s{seed}" / "train.txt").read_text())
    assert any(o != (tmp_path / "a" / "train.txt").read_text() for o in others)


def test_dataset_card(project, tmp_path):
    store, truth = project
    result = export_dataset(store, tmp_path / "out", "lapa", only="all", target_schema="lapa", seed=2)
    lapa = get_schema("lapa")
    masks = [get_schema("celebamask-hq").map_mask(truth[n], "lapa") for n in exported(only="all")]
    pixels = np.bincount(np.concatenate([m.ravel() for m in masks]), minlength=lapa.num_classes)
    data = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert data["count"] == result.count == 10
    assert data["split"]["counts"] == result.splits and sum(result.splits.values()) == 10
    assert data["statuses"] == {"reviewed": 4, "corrected": 4, "predicted": 2}
    assert data["corrected_by_hand"] == result.corrected_by_hand == 8
    assert data["model_versions"] == {MODEL_VERSION: 10}
    assert data["schema"] == "lapa" and data["source_schema"] == "celebamask-hq"
    assert data["class_pixels"] == {name: int(pixels[i]) for i, name in enumerate(lapa.classes)}
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| images | 10 |" in card and "| corrected by hand | 8 of 10 |" in card
    train, val, test = (result.splits[s] for s in ("train", "val", "test"))
    assert f"train {train}, val {val}, test {test} (fractions 0.8/0.1/0.1, seed 2)" in card
    assert "`lapa`, 11 classes, mapped from the project's `celebamask-hq`" in card
    assert f"`{MODEL_VERSION}` (parser, trained" in card and "miou 0.5" in card
    for i, name in enumerate(lapa.classes):
        ratio = 100 * pixels[i] / pixels.sum()
        assert f"| {i} | {name} | " in card and f"| {pixels[i]} | {ratio:.3f} |" in card


def test_unknown_format_mapping_or_nothing_selected_is_refused(project, tmp_path):
    store, _ = project
    with pytest.raises(ExportError, match="unknown dataset format 'pascal'"):
        export_dataset(store, tmp_path / "out", "pascal")
    with pytest.raises(ExportError, match="declares no mapping to 'face-mask'"):
        export_dataset(store, tmp_path / "out", "coco", target_schema="face-mask")
    with pytest.raises(ExportError, match="split fractions must add up to 1"):
        export_dataset(store, tmp_path / "out", "coco", split="0.5,0.1,0.1")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ExportError, match="inside the project's image folder"):
        export_dataset(store, store.root / "dataset", "coco")
    assert not (store.root / "dataset").exists()


def test_nothing_to_export(tmp_path):
    make_project(tmp_path / "faces", statuses=("new", "predicted"))
    with ProjectStore.open(tmp_path / "faces") as store, pytest.raises(ExportError, match="no reviewed images"):
        export_dataset(store, tmp_path / "out", "coco", only="reviewed")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_destination_is_replaced_only_when_asked(project, tmp_path):
    store, _ = project
    out = tmp_path / "out"
    out.mkdir()
    export_dataset(store, out, "yolo", only="reviewed")
    assert (out / "data.yaml").is_file()
    with pytest.raises(ExportError, match="already exists and is not empty"):
        export_dataset(store, out, "coco", only="reviewed")
    assert (out / "data.yaml").is_file()
    (out / "stale.txt").write_text("old")
    with pytest.raises(ExportError, match="did not write: stale.txt"):
        export_dataset(store, out, "coco", only="reviewed", overwrite=True)  # the user's own file is never deleted
    assert (out / "stale.txt").read_text() == "old" and (out / "data.yaml").is_file()
    (out / "stale.txt").unlink()
    export_dataset(store, out, "coco", only="reviewed", overwrite=True)
    assert (out / "annotations").is_dir() and not (out / "stale.txt").exists() and not (out / "data.yaml").exists()
    assert leftovers(tmp_path) == []


def test_progress_reports_every_image(project, tmp_path):
    store, _ = project
    calls = []
    export_dataset(store, tmp_path / "out", "labelme", only="all", progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 10) for i in range(1, 11)]


def test_cancel_leaves_nothing_behind(project, tmp_path):
    store, _ = project
    cancel = threading.Event()

    def progress(done, total):
        if done == 3:
            cancel.set()

    with pytest.raises(ExportCancelled, match="cancelled after 3 of 10"):
        export_dataset(store, tmp_path / "out", "coco", only="all", progress=progress, cancel=cancel)
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []


def test_failure_midway_leaves_the_old_destination(tmp_path, monkeypatch):
    make_project(tmp_path / "faces")
    out = tmp_path / "out"
    with ProjectStore.open(tmp_path / "faces") as store:
        export_dataset(store, out, "lapa", only="all")
        before = sorted(p.relative_to(out) for p in out.rglob("*"))
        victim = store.images(status="corrected")[2]
        copy = lapa.copy_image

        def copy_until_the_disk_is_full(src, dst):
            if src.name == victim.name:
                raise OSError(errno.ENOSPC, "No space left on device", str(dst))
            copy(src, dst)

        monkeypatch.setattr(lapa, "copy_image", copy_until_the_disk_is_full)
        with pytest.raises(ExportError, match=victim.relpath.split("/")[-1]):
            export_dataset(store, out, "lapa", only="all", overwrite=True)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert leftovers(tmp_path) == []


def test_overwrite_refuses_a_folder_that_is_not_an_export(project, tmp_path):
    store, _ = project
    out = tmp_path / "documents"
    out.mkdir()
    (out / "thesis.txt").write_text("years of work")
    with pytest.raises(ExportError, match="not an earlier export"):
        export_dataset(store, out, "coco", only="reviewed", overwrite=True)
    assert (out / "thesis.txt").read_text() == "years of work"
    assert leftovers(tmp_path) == []


def test_overwrite_refuses_a_folder_that_holds_the_project(tmp_path):
    make_project(tmp_path / "work" / "faces")
    out = tmp_path / "work"
    (out / "dataset.json").write_text("{}")
    with ProjectStore.open(out / "faces") as store:
        images = len(store.images())
        with pytest.raises(ExportError, match="holds the project itself"):
            export_dataset(store, out, "coco", only="all", overwrite=True)
    with ProjectStore.open(out / "faces") as store:
        assert len(store.images()) == images


def test_same_mask_name_twice_is_refused(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for ext in ("png", "jpg"):
        Image.new("RGB", (8, 8)).save(folder / f"twin.{ext}")
    with ProjectStore.create(folder) as store:
        store.scan()
        for rec in store.images():
            store.save_corrected(rec.id, np.ones((8, 8), np.uint8))
        with pytest.raises(ExportError, match="same label file name twin.png"):
            export_dataset(store, tmp_path / "out", "index-png")


def test_rotated_photos_are_exported_upright(tmp_path):
    picture = np.zeros((20, 40, 3), np.uint8)
    picture[:, :10] = 255
    img = Image.fromarray(picture)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    copy_image(tmp_path / "rotated.jpg", tmp_path / "out" / "rotated.jpg")
    copied = Image.open(tmp_path / "out" / "rotated.jpg")
    assert copied.size == (20, 40)
    assert copied.getexif().get(0x0112, 1) == 1
    assert np.asarray(copied.convert("L"))[:10].mean() > 200
    copy_image(tmp_path / "out" / "rotated.jpg", tmp_path / "again.jpg")
    assert (tmp_path / "again.jpg").read_bytes() == (tmp_path / "out" / "rotated.jpg").read_bytes()


def test_unreadable_masks_only_stop_the_export_cleanly(tmp_path):
    make_project(tmp_path / "faces", statuses=("corrected", "corrected"))
    with ProjectStore.open(tmp_path / "faces") as store:
        for rec in store.images():
            store.mask_path("corrected", rec.id).write_bytes(b"not a png")
        with pytest.raises(ExportError, match="mask of .* is unreadable"):
            export_dataset(store, tmp_path / "out", "coco")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_a_photo_replaced_after_labeling_is_skipped_with_its_reason(tmp_path):
    make_project(tmp_path / "faces")
    with ProjectStore.open(tmp_path / "faces") as store:
        victim = store.images(status="corrected")[0]
        path = store.root / victim.relpath
        with Image.open(path) as picture:
            picture.crop((0, 0, picture.width - 8, picture.height)).save(path)
        store.scan()
        result = export_dataset(store, tmp_path / "out", "coco", only="corrected")
    listed = {image["file_name"].rsplit("/", 1)[-1] for annotations in (tmp_path / "out").rglob("*.json")
              if "images" in (data := json.loads(annotations.read_text())) for image in data["images"]}
    assert listed and victim.name not in listed
    assert len(result.skipped) == 1 and victim.relpath in result.skipped[0] and "replaced" in result.skipped[0]
    assert result.count == len(exported(only="corrected")) - 1


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_a_bad_split_seed_is_an_export_error(project, tmp_path, seed):
    store, _ = project
    with pytest.raises(ExportError, match="seed must be a whole number"):
        export_dataset(store, tmp_path / "out", "coco", only="reviewed", seed=seed)
    assert not (tmp_path / "out").exists()


def test_the_card_tells_hand_corrections_from_predictions_checked_and_left_as_they_were(tmp_path):
    truth = make_project(tmp_path / "faces", statuses=("corrected", "predicted", "predicted", "predicted"))
    with ProjectStore.open(tmp_path / "faces") as store:
        accepted, reviewed, untouched = store.images()[1:]
        store.save_corrected(accepted.id, store.predicted_mask(accepted.id))  # accepted as it was
        store.set_status(reviewed.id, "reviewed")  # approved as it was
        result = export_dataset(store, tmp_path / "out", "index-png", only="corrected")
    assert result.count == 3 and untouched.relpath in truth
    assert (result.corrected_by_hand, result.approved_as_predicted) == (1, 2)
    data = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert (data["corrected_by_hand"], data["approved_as_predicted"]) == (1, 2)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| corrected by hand | 1 of 3 |" in card and "| checked and left as predicted | 2 of 3 |" in card
