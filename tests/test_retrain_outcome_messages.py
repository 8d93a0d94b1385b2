"""A retrain says what became of re-predicting after a promotion when that did not finish, and a face-mask model
cannot win promotion over one that is right about validation faces without a mask by painting a false mask."""

import threading
import types

import numpy as np
from faceparse.app.gui.models_panel import ModelsPanel
from faceparse.core import train_worker
from faceparse.core.metrics import BinaryScores
from faceparse.core.prelabel import prelabel_lock
from faceparse.core.store import ProjectStore
from faceparse.core.versions import decide_promotion
from PIL import Image

PROMOTED = {"task": "parser", "version": "v0002", "metric": "miou_no_bg", "score": 0.7, "promoted": True,
            "reason": "promoted: 0.7000 beats the active model's 0.6000", "baseline_version": "v0001",
            "baseline_score": 0.6}


def test_a_failed_re_prediction_after_promotion_is_reported(tmp_path):
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    with ProjectStore.create(tmp_path) as store:
        store.scan()
        version = tmp_path / "v"
        version.mkdir()
        (version / "model.onnx").write_bytes(b"")
        lock = prelabel_lock(store)
        assert lock.acquire()  # the studio's own pre-label run holds it
        events = []
        ctx = types.SimpleNamespace(
            store=store, config=types.SimpleNamespace(task="parser", repredict=True, threads=1),
            decision=types.SimpleNamespace(promote=True), version={"version": "v0002", "path": str(version)},
            device=types.SimpleNamespace(type="cpu"), cancel_event=threading.Event(), repredict=None, notes=[],
            emit=lambda phase, message="", **fields: events.append(message), note=events.append,
            cancelled=lambda: False)
        try:
            train_worker.phase_repredict(ctx)
        finally:
            lock.release()
    assert ctx.repredict["state"] == "failed"
    result = {**PROMOTED, "repredict": ctx.repredict}
    for text in (train_worker._summary_message(result), ModelsPanel.describe_result(result)):
        assert "the faces nobody checked were not predicted again" in text
        assert "pre-label all images again" in text


def test_a_cancelled_re_prediction_says_how_far_it_got():
    result = {**PROMOTED, "repredict": {"state": "cancelled", "predicted": 3, "total": 10, "failed": 0}}
    assert "only 3 of 10 unchecked faces were predicted again" in ModelsPanel.describe_result(result)


def test_a_finished_re_prediction_adds_nothing():
    result = {**PROMOTED, "repredict": {"state": "done", "predicted": 10, "total": 10, "failed": 0}}
    assert ModelsPanel.describe_result(result).endswith("promoted — now active (0.7000 beats the active model's "
                                                        "0.6000)")


def test_a_false_mask_on_faces_without_one_does_not_win_promotion():
    truth = np.zeros((64, 64), bool)
    active, new = BinaryScores(), BinaryScores()
    active.add(np.zeros((64, 64)), truth)  # right: no mask anywhere
    false_mask = np.zeros((64, 64))
    false_mask[:4, :10] = 0.9
    new.add(false_mask, truth)
    decision = decide_promotion(new.summary()["iou"], active.summary()["iou"], faces=3)
    assert not decision.promote
    assert "has no measurable score on these validation faces" in decision.reason
