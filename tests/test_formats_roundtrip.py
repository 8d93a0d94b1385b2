"""Export then import gives the masks back: exactly for index and COCO layouts, within the stated tolerance for
polygon layouts (LabelMe, YOLO): at least 99.5% of pixels agree in every image and every class with 30 or more
pixels keeps an IoU of at least 0.95."""

import numpy as np
import pytest
from faceparse.core.export import export_dataset
from faceparse.core.formats import FORMATS
from faceparse.core.importer import import_dataset
from faceparse.core.schemas import get_schema
from faceparse.core.store import ProjectStore
from test_formats_support import MODEL_VERSION, agreement, class_ious, copy_images, exported, make_project

EXACT = ("celebamask-hq", "lapa", "index-png", "coco", "coco-polygons")
POLYGON = ("labelme", "yolo")
MIN_AGREEMENT = 0.995
MIN_IOU = 0.95


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("roundtrip") / "faces"
    truth = make_project(root)
    return root, truth


def test_every_format_is_covered():
    assert set(FORMATS) == set(EXACT) | set(POLYGON)
    assert all(FORMATS[f].exact for f in EXACT) and not any(FORMATS[f].exact for f in POLYGON)


def assert_close(expected: np.ndarray, got: np.ndarray, exact: bool, name: str) -> None:
    assert got is not None, f"{name}: nothing imported"
    assert got.shape == expected.shape, name
    if exact:
        assert np.array_equal(got, expected), f"{name}: {np.count_nonzero(got != expected)} pixels differ"
    else:
        assert agreement(expected, got) >= MIN_AGREEMENT, name
        assert min(class_ious(expected, got).values()) >= MIN_IOU, name


@pytest.mark.parametrize("fmt", EXACT + POLYGON)
def test_export_then_import_gives_the_masks_back(project, tmp_path, fmt):
    root, truth = project
    with ProjectStore.open(root) as store:
        result = export_dataset(store, tmp_path / "dataset", fmt, only="all", seed=3,
                                target_schema=store.schema.name if fmt == "lapa" else None)
    wanted = exported(only="all")
    assert result.count == len(wanted)
    with copy_images(root, tmp_path / "copy") as target:
        report = import_dataset(target, tmp_path / "dataset", fmt)
        assert report.imported == len(wanted) and not report.problems
        for rec in target.images():
            if rec.relpath in wanted:
                assert rec.status == "corrected"
                assert_close(truth[rec.relpath], target.corrected_mask(rec.id), fmt in EXACT, rec.relpath)
            else:
                assert rec.status == "new" and target.current_mask(rec.id) is None


@pytest.mark.parametrize("fmt", EXACT + POLYGON)
def test_mapped_export_imports_into_a_project_of_the_target_schema(project, tmp_path, fmt):
    root, truth = project
    celeb = get_schema("celebamask-hq")
    with ProjectStore.open(root) as store:
        export_dataset(store, tmp_path / "dataset", fmt, only="reviewed", target_schema="lapa")
    with copy_images(root, tmp_path / "copy", schema="lapa") as target:
        report = import_dataset(target, tmp_path / "dataset", fmt, kind="predicted")
        assert report.imported == len(exported(only="reviewed"))
        for rec in target.images():
            mask = target.predicted_mask(rec.id)
            if rec.relpath in exported(only="reviewed"):
                assert rec.status == "predicted" and rec.model_version == f"import:{fmt}"
                assert_close(celeb.map_mask(truth[rec.relpath], "lapa"), mask, fmt in EXACT, rec.relpath)
            else:
                assert mask is None


def test_a_celebamask_dataset_comes_into_a_lapa_project_through_the_declared_mapping(project, tmp_path):
    root, truth = project
    with ProjectStore.open(root) as store:
        export_dataset(store, tmp_path / "dataset", "celebamask-hq", only="corrected")
    (tmp_path / "dataset" / "schema.json").unlink()
    with copy_images(root, tmp_path / "copy", schema="lapa") as target:
        report = import_dataset(target, tmp_path / "dataset", "celebamask-hq")
        assert report.class_map["l_eye"] == "right_eye" and report.class_map["hair"] == "hair"
        for rec in target.images(status="corrected"):
            expected = get_schema("celebamask-hq").map_mask(truth[rec.relpath], "lapa")
            assert np.array_equal(target.corrected_mask(rec.id), expected)
        assert target.count("corrected") == len(exported(only="corrected"))


def test_importing_into_the_same_project_changes_nothing(project, tmp_path):
    root, _ = project
    with ProjectStore.open(root) as store:
        export_dataset(store, tmp_path / "dataset", "coco", only="corrected")
        before = {r.relpath: (r.status, r.model_version) for r in store.images()}
        report = import_dataset(store, tmp_path / "dataset", "coco")
        assert report.imported == 0 and report.unchanged == len(exported(only="corrected"))
        assert {r.relpath: (r.status, r.model_version) for r in store.images()} == before
        assert before["face09.png"] == ("predicted", MODEL_VERSION)


@pytest.mark.parametrize("fmt", EXACT + POLYGON)
def test_an_all_background_mask_comes_back(tmp_path, fmt):
    make_project(tmp_path / "faces", statuses=("corrected", "corrected"))
    with ProjectStore.open(tmp_path / "faces") as store:
        empty = store.images()[1]
        store.save_corrected(empty.id, np.zeros((empty.height, empty.width), np.uint8))
        export_dataset(store, tmp_path / "dataset", fmt, target_schema=store.schema.name if fmt == "lapa" else None)
    with copy_images(tmp_path / "faces", tmp_path / "copy") as target:
        assert import_dataset(target, tmp_path / "dataset", fmt).imported == 2
        mask = target.corrected_mask(target.find(empty.relpath).id)
        assert mask.shape == (empty.height, empty.width) and not mask.any()
