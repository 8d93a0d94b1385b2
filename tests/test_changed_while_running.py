"""Work another process does while a long import or pre-label run is under way is not overwritten by it: a mask a
person corrects after the import's check is left out of the import (and named), and a prediction imported after a
pre-label run made its plan is kept, as the plan would have kept it."""

import numpy as np
from faceparse.core import mask_rollback
from faceparse.core.faces import WHOLE_IMAGE
from faceparse.core.importer import import_dataset
from faceparse.core.prelabel import IMPORTED_PREFIX, PrelabelJob, _Run
from faceparse.core.store import ProjectStore
from onnx_models import foreground_model
from PIL import Image

SIZE = 32


def photos(folder, count=3):
    folder.mkdir()
    for i in range(count):
        Image.fromarray(np.full((SIZE, SIZE, 3), 50 + 40 * i, np.uint8)).save(folder / f"p{i}.png")
    with ProjectStore.create(folder) as store:
        store.scan()
    return folder


def index_dataset(root, names, value):
    root.mkdir()
    for name in names:
        Image.fromarray(np.full((SIZE, SIZE), value, np.uint8)).save(root / f"{name}.png")
    return root


def test_a_mask_corrected_after_the_imports_check_is_left_out(tmp_path, monkeypatch):
    folder = photos(tmp_path / "photos")
    source = index_dataset(tmp_path / "labels", ["p0", "p1", "p2"], 3)
    persons = np.full((SIZE, SIZE), 5, np.uint8)
    real_keep = mask_rollback.MaskRollback.keep
    with ProjectStore.open(folder) as store:
        late = store.find("p1.png").id

        def keep(self, image_id):
            if image_id == late:  # the person saves in the studio just before the import reaches this image
                with ProjectStore.open(folder) as studio:
                    studio.save_corrected(late, persons)
                    studio.set_status(late, "reviewed")
            return real_keep(self, image_id)
        monkeypatch.setattr(mask_rollback.MaskRollback, "keep", keep)
        report = import_dataset(store, source, "index-png")
        assert report.imported == 2
        assert any("p1.png left out: it was corrected or reviewed while the import ran" in n for n in report.notes)
        assert np.array_equal(store.corrected_mask(late), persons) and store.get(late).status == "reviewed"
        assert (store.corrected_mask(store.find("p0.png").id) == 3).all()


def test_overwrite_still_replaces_a_mask_corrected_meanwhile(tmp_path, monkeypatch):
    folder = photos(tmp_path / "photos", count=1)
    source = index_dataset(tmp_path / "labels", ["p0"], 3)
    real_keep = mask_rollback.MaskRollback.keep

    def keep(self, image_id):
        with ProjectStore.open(folder) as studio:
            studio.save_corrected(image_id, np.full((SIZE, SIZE), 5, np.uint8))
        return real_keep(self, image_id)
    monkeypatch.setattr(mask_rollback.MaskRollback, "keep", keep)
    with ProjectStore.open(folder) as store:
        assert import_dataset(store, source, "index-png", overwrite=True).imported == 1
        assert (store.corrected_mask(store.images()[0].id) == 3).all()


def test_a_prediction_imported_while_pre_labeling_runs_is_kept(tmp_path, monkeypatch):
    folder = photos(tmp_path / "photos")
    model = foreground_model(tmp_path / "face.onnx")
    imported = np.full((SIZE, SIZE), 4, np.uint8)
    real_result = _Run.on_result
    with ProjectStore.open(folder) as store:
        late = store.find("p1.png").id

        def on_result(self, image_id, prediction):
            if image_id == late:  # `faceparse import --as predicted` in a terminal, after this run's plan
                with ProjectStore.open(folder) as other:
                    other.save_predicted(late, imported, IMPORTED_PREFIX + "index-png")
            return real_result(self, image_id, prediction)
        monkeypatch.setattr(_Run, "on_result", on_result)
        result = PrelabelJob(store, model, mode=WHOLE_IMAGE, batch_size=1).run()
        assert result.predicted == 2 and result.skipped_imported == 1
        assert np.array_equal(store.predicted_mask(late), imported)
        redo = PrelabelJob(store, model, mode=WHOLE_IMAGE, batch_size=1, redo=True).run()
        assert redo.predicted == 3 and not np.array_equal(store.predicted_mask(late), imported)
