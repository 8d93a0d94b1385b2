"""A retrain cancelled while it re-predicts has already promoted its model: the last message says so, and how to
finish the re-prediction or go back."""

import threading
from types import SimpleNamespace

from drawn_projects import draw_folder
from faceparse.core.faces import WHOLE_IMAGE
from faceparse.core.prelabel import MODE_SETTING
from faceparse.core.store import ProjectStore
from faceparse.core.train_worker import phase_repredict
from onnx_models import foreground_model


def test_a_cancelled_re_prediction_says_the_new_model_is_active(tmp_path):
    draw_folder(tmp_path / "faces", 3, 48, background="none")
    with ProjectStore.create(tmp_path / "faces") as store:
        store.scan()
        version_dir = store.models_dir / "parser" / "v0001"
        version_dir.mkdir(parents=True)
        foreground_model(version_dir / "model.onnx")
        store.add_model_version("parser", "v0001", version_dir, {})
        store.set_active_model("parser", "v0001")
        store.set_setting(MODE_SETTING, WHOLE_IMAGE)
        cancel = threading.Event()
        cancel.set()
        said = []
        ctx = SimpleNamespace(decision=SimpleNamespace(promote=True),
                              config=SimpleNamespace(repredict=True, task="parser", threads=1), store=store,
                              version={"version": "v0001", "path": str(version_dir)},
                              device=SimpleNamespace(type="cpu"), emit=lambda phase, text, **_: said.append(text),
                              note=said.append, cancelled=lambda: False, cancel_event=cancel, repredict=None)
        phase_repredict(ctx)
    assert ctx.repredict["state"] == "cancelled", (ctx.repredict, said)
    assert "the new model was already active" in said[-1]
    assert "faceparse prelabel" in said[-1] and "rollback" in said[-1]
