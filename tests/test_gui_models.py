"""The models panel driven through its buttons: pre-label with a tiny ONNX model, retrain a tiny network in its own
process and watch the events, the curve and the version list."""

import numpy as np
from faceparse.core.faces import WHOLE_IMAGE
from faceparse.core.prelabel import MODE_SETTING, prediction_settings
from faceparse.core.schemas import get_schema
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import make_synthetic_folder
from onnx_models import foreground_model
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import install_model, make_project, open_window


def test_prelabel_all_and_this_image_from_the_panel(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=3, size=64, predicted=False)
    install_model(folder)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    panel, session = ws.models, ws.session
    assert panel.device_label.text().startswith(("CPU", "GPU"))
    assert session.prediction is None

    QTest.mouseClick(panel.prelabel_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.prelabel_task is None, timeout=60_000)
    assert "3 predicted" in panel.prelabel_status.text(), panel.prelabel_status.text()
    assert [ws.image_list.model.record(r).status for r in range(3)] == ["predicted"] * 3
    assert session.prediction is not None
    with ProjectStore.open(folder) as store:
        stored = store.predicted_mask(session.image_id)
    assert np.array_equal(session.prediction, stored)
    assert np.array_equal(session.editor.mask, stored)  # an untouched image follows its new prediction
    assert set(np.unique(stored)) <= {0, 1}

    with ProjectStore.open(folder) as store:
        store.mask_path("predicted", session.image_id).unlink()
    QTest.mouseClick(panel.prelabel_one_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.prelabel_task is None, timeout=60_000)
    assert "predicted by v0001 (" in panel.prelabel_status.text(), panel.prelabel_status.text()
    with ProjectStore.open(folder) as store:
        assert store.get(session.image_id).predicted_with in panel.prelabel_status.text()
    with ProjectStore.open(folder) as store:
        assert np.array_equal(store.predicted_mask(session.image_id), stored)



def test_flip_tta_is_a_project_choice_and_predicts_again(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=3, size=64, predicted=False)
    install_model(folder)
    window = open_window(qtbot, folder, tmp_path)
    panel = window.ws.models
    assert not panel.tta.isChecked()
    QTest.mouseClick(panel.prelabel_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.prelabel_task is None, timeout=60_000)
    assert "3 predicted" in panel.prelabel_status.text(), panel.prelabel_status.text()

    QTest.mouseClick(panel.tta, Qt.MouseButton.LeftButton)
    assert panel.tta.isChecked()
    QTest.mouseClick(panel.prelabel_one_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.prelabel_task is None, timeout=60_000)
    assert "flip TTA" in panel.prelabel_status.text(), panel.prelabel_status.text()
    QTest.mouseClick(panel.prelabel_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.prelabel_task is None, timeout=60_000)
    assert "2 predicted" in panel.prelabel_status.text(), panel.prelabel_status.text()
    with ProjectStore.open(folder) as store:
        settings = {rec.predicted_with for rec in store.images()}
        assert len(settings) == 1 and settings.pop().endswith(", flip TTA")
    window.close()
    reopened = open_window(qtbot, folder, tmp_path)
    assert reopened.ws.models.tta.isChecked()

def test_retrain_from_the_panel_shows_progress_and_a_new_version(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=8, size=64, predicted=False, corrected=True)
    with ProjectStore.open(folder) as store:
        assert store.split_counts()["val"] > 0
    window = open_window(qtbot, folder, tmp_path)
    panel = window.ws.models
    assert panel.version_names() == []
    panel.epochs.setValue(1)
    panel.extra_options = {"input_size": 32, "batch_size": 4, "max_steps": 2, "init": "scratch", "threads": 1,
                           "export_onnx": False, "repredict": False, "pretrain": False, "patience": 0,
                           "time_limit_s": None}

    QTest.mouseClick(panel.retrain_button, Qt.MouseButton.LeftButton)
    assert not panel.retrain_button.isEnabled() and panel.retrain_cancel.isEnabled()
    qtbot.waitUntil(lambda: bool(panel.events) and panel.events[-1].final, timeout=900_000)

    phases = [e.phase for e in panel.events]
    assert phases[-1] == "done", panel.events[-1].message
    train = [e for e in panel.events if e.phase == "train" and e.loss is not None]
    assert train and panel.plot.losses == [e.loss for e in train]
    assert "validate" in phases and len(panel.plot.scores) >= 1
    result = panel.last_result
    assert panel.version_names() == [result["version"]]
    assert panel.versions.topLevelItem(0).text(1) == f"{result['score']:.3f}"
    assert result["version"] in panel.retrain_result.text()
    assert ("promoted" in panel.retrain_result.text()) and panel.retrain_button.isEnabled()
    with ProjectStore.open(folder) as store:
        assert [m["version"] for m in store.model_versions("parser")] == [result["version"]]


def test_prelabel_this_image_maps_classes_and_uses_the_projects_framing(qtbot, tmp_path):
    folder = tmp_path / "faces"
    make_synthetic_folder(folder, 2, size=64, seed=7)
    with ProjectStore.create(folder, "lapa") as store:
        store.scan()
        store.set_setting(MODE_SETTING, WHOLE_IMAGE)
        version_dir = store.models_dir / "parser" / "v0001"
        version_dir.mkdir(parents=True)
        foreground_model(version_dir / "model.onnx", "celebamask-hq", face_class=2)  # CelebAMask's nose
        store.add_model_version("parser", "v0001", version_dir, {"miou_no_bg": 0.1})
        store.set_active_model("parser", "v0001")
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    QTest.keyClick(ws.canvas, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: ws.models.prelabel_task is None, timeout=60_000)
    assert "predicted by v0001" in ws.models.prelabel_status.text(), ws.models.prelabel_status.text()
    with ProjectStore.open(folder) as store:
        record = store.get(ws.session.image_id)
        mask = store.predicted_mask(record.id)
    assert record.predicted_with == prediction_settings(WHOLE_IMAGE, False)
    nose = get_schema("lapa").classes.index("nose")
    assert set(np.unique(mask)) == {0, nose}


def test_cancelling_a_retrain_says_so_at_once_and_keeps_the_active_model(qtbot, tmp_path, monkeypatch):
    folder = make_project(tmp_path / "faces", count=8, size=64, predicted=False, corrected=True)
    window = open_window(qtbot, folder, tmp_path)
    monkeypatch.setattr(window, "_ask_stop_retrain", lambda: True)  # a failed assertion must not leave a question open
    panel = window.ws.models
    panel.epochs.setValue(50)
    panel.extra_options = {"input_size": 32, "batch_size": 4, "init": "scratch", "threads": 1, "export_onnx": False,
                           "repredict": False, "pretrain": False, "patience": 0, "time_limit_s": None}
    QTest.mouseClick(panel.retrain_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(e.phase == "train" for e in panel.events), timeout=300_000)

    QTest.mouseClick(panel.retrain_cancel, Qt.MouseButton.LeftButton)
    assert not panel.retrain_cancel.isEnabled() and not panel.retrain_button.isEnabled()
    assert panel.retrain_phase.text().startswith("Cancelling")
    qtbot.waitUntil(lambda: panel.events[-1].final, timeout=120_000)
    assert panel.events[-1].phase == "cancelled", panel.events[-1].message
    assert panel.retrain_phase.text() == "Retrain cancelled."
    assert panel.retrain_button.isEnabled() and not panel.retrain_cancel.isEnabled()
    assert panel.version_names() == []
