"""A pre-label run stopped at once (a second Ctrl+C) is recorded as cancelled with words, not as failed with an
empty reason; one image at a time, the predictor says its thread count in words that fit."""

import numpy as np
import pytest
from faceparse.core import prelabel
from faceparse.core.faces import WHOLE_IMAGE
from faceparse.core.prelabel import PrelabelJob
from faceparse.core.store import ProjectStore
from PIL import Image


def test_an_interrupted_run_is_recorded_as_cancelled(tmp_path, monkeypatch):
    folder = tmp_path / "faces"
    folder.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "a.png")

    def interrupted(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(prelabel.PrelabelJob, "_run_job", interrupted)
    with ProjectStore.create(folder) as store:
        store.scan()
        with pytest.raises(KeyboardInterrupt):
            PrelabelJob(store, None, mode=WHOLE_IMAGE).run()
        job = store.jobs(kind=prelabel.JOB_KIND)[0]
        assert job["state"] == "cancelled"
        assert "interrupted" in job["message"] and "kept" in job["message"]


def test_one_thread_is_said_in_the_singular(tmp_path):
    from faceparse.core.predictor import Predictor
    from onnx_models import foreground_model

    predictor = Predictor(foreground_model(tmp_path / "m.onnx"), device="cpu", threads=1)
    assert predictor.describe().endswith("on CPU, 1 thread")


def test_a_damaged_onnx_file_of_the_active_version_names_the_way_out(tmp_path):
    from faceparse.core.predictor import ModelError

    folder = tmp_path / "faces"
    folder.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "a.png")
    with ProjectStore.create(folder) as store:
        store.scan()
        path = store.models_dir / "parser" / "v0001"
        path.mkdir(parents=True)
        (path / "model.onnx").write_bytes(b"cut short by a full disk")
        store.add_model_version("parser", "v0001", path, {})
        store.set_active_model("parser", "v0001")
        with pytest.raises(ModelError, match="not a readable ONNX model.*activate v0001"):
            PrelabelJob(store, None, mode=WHOLE_IMAGE).run()
