"""--source-schema names the schema a dataset's masks are read in: it may not contradict the dataset's own
schema.json, and a format whose labels name their classes gets no note about classes its labels do hold."""

import numpy as np
import pytest
from faceparse.core import importer
from faceparse.core.export import export_dataset
from faceparse.core.store import ProjectStore
from PIL import Image

SIZE = 16


def every_class_mask(num_classes):
    mask = np.zeros((SIZE, SIZE), np.uint8)
    for k in range(num_classes):
        mask[k % SIZE, :] = k
    return mask


def one_photo_project(folder):
    folder.mkdir()
    Image.fromarray(np.full((SIZE, SIZE, 3), 90, np.uint8)).save(folder / "a.png")
    store = ProjectStore.create(folder)
    store.scan()
    return store


@pytest.fixture
def project(tmp_path):
    store = one_photo_project(tmp_path / "faces")
    store.save_corrected(store.find("a.png").id, every_class_mask(store.schema.num_classes))
    yield store
    store.close()


@pytest.fixture
def fresh(tmp_path):
    """Another project on the same photo, with no masks."""
    store = one_photo_project(tmp_path / "again")
    yield store
    store.close()


def exported(store, tmp_path, fmt):
    out = tmp_path / f"export-{fmt}"
    export_dataset(store, out, fmt, split=(1, 0, 0))
    return out


def test_a_source_schema_that_contradicts_the_datasets_own_is_refused(project, fresh, tmp_path):
    dataset = exported(project, tmp_path, "index-png")
    with pytest.raises(importer.ImportRefused) as refused:
        importer.import_dataset(fresh, dataset, "index-png", source_schema="lapa", dry_run=True)
    (problem,) = refused.value.report.problems
    assert problem.startswith("--source-schema lapa (11 classes) contradicts the dataset's own")
    assert "celebamask-hq, 19 classes" in problem
    report = importer.import_dataset(fresh, dataset, "index-png", source_schema="celebamask-hq", dry_run=True)
    assert report.planned == 1 and not report.problems


def test_labels_that_name_their_classes_get_no_note_about_classes_they_hold(project, fresh, tmp_path):
    dataset = exported(project, tmp_path, "yolo")
    (dataset / "schema.json").unlink()  # another tool's YOLO dataset: only data.yaml names the classes
    report = importer.import_dataset(fresh, dataset, "yolo", source_schema="lapa")
    assert report.imported == 1
    assert not [note for note in report.notes if "never contain" in note]
    stored = fresh.corrected_mask(fresh.find("a.png").id)
    assert {"eye_g", "hat", "cloth"} <= {fresh.schema.classes[v] for v in np.unique(stored)}
