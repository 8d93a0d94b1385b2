"""The model-versions part of the models panel: scores, what the buttons allow, and the retrain verdict."""

import threading

from faceparse.app.gui.models_panel import ModelsPanel
from faceparse.core.store import ProjectStore
from onnx_models import foreground_model
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import make_project, open_window


def _add_version(store, version, metrics, parent=None):
    """A version that pre-labels with a tiny ONNX model; its checkpoint files are placeholders that make the version
    count as complete (these tests never load them)."""
    path = store.models_dir / "parser" / version
    path.mkdir(parents=True)
    foreground_model(path / "model.onnx")
    (path / "model.safetensors").write_bytes(b"")
    (path / "meta.json").write_text("{}")
    store.add_model_version("parser", version, path, metrics, parent=parent)


def _window_with_a_model(qtbot, tmp_path):
    """Two unlabeled faces and an active tiny version v0001."""
    folder = make_project(tmp_path / "faces", count=2, size=64, predicted=False)
    with ProjectStore.open(folder) as store:
        _add_version(store, "v0001", {"miou_no_bg": 0.1})
        store.set_active_model("parser", "v0001")
    window = open_window(qtbot, folder, tmp_path)
    return folder, window, window.ws.models


def test_a_retrain_against_the_starter_model_says_so():
    text = ModelsPanel.describe_result({"version": "v0001", "metric": "miou_no_bg", "score": 0.043,
                                        "baseline_version": None, "baseline_score": 0.1546, "promoted": False})
    assert "vs the starter model 0.155" in text and "no active model before" not in text
    first = ModelsPanel.describe_result({"version": "v0001", "metric": "miou_no_bg", "score": 0.3,
                                         "baseline_version": None, "baseline_score": None, "promoted": True})
    assert "(no active model before)" in first


def test_scores_buttons_and_an_activation_in_progress(qtbot, tmp_path, monkeypatch):
    from faceparse.app.gui import models_panel

    release = threading.Event()

    def slow_activate(store, task, version, *_args, **_kwargs):
        """Activation as the panel sees it, held until released (exporting ONNX can take a while)."""
        assert release.wait(30)
        store.set_active_model(task, version)
        return store.model_version(task, version)

    monkeypatch.setattr(models_panel, "activate", slow_activate)
    folder = make_project(tmp_path / "faces", count=2, size=64, predicted=False)
    with ProjectStore.open(folder) as store:
        _add_version(store, "v0001", {"metric": "miou_no_bg", "score": 0.42, "val": {"miou_no_bg": 0.42}})
        store.set_active_model("parser", "v0001")
    window = open_window(qtbot, folder, tmp_path)
    panel = window.ws.models
    assert panel.versions.topLevelItem(0).text(1) == "0.420"
    assert panel.activate_button.isEnabled() and panel.rollback_button.isEnabled()
    assert "starter model" in panel.rollback_button.toolTip()

    with ProjectStore.open(folder) as store:
        _add_version(store, "v0002", {"miou_no_bg": 0.3}, parent="v0001")
    panel.refresh_versions()
    assert panel.version_names() == ["v0002", "v0001"] and panel.versions.topLevelItem(0).text(1) == "0.300"
    panel.versions.setCurrentItem(panel.versions.topLevelItem(0))
    panel.activate_selected()
    panel.refresh_versions()
    assert not panel.activate_button.isEnabled() and not panel.rollback_button.isEnabled()
    assert not panel.retrain_button.isEnabled()
    assert not panel.start_retrain() and "Wait until the model being activated is ready" in panel.retrain_phase.text()
    assert not panel.retrain.running
    panel.versions.clear()
    release.set()
    qtbot.waitUntil(lambda: window.ws.store.active_model("parser")["version"] == "v0002", timeout=30_000)
    qtbot.waitUntil(lambda: panel.rollback_button.isEnabled(), timeout=30_000)
    assert panel.retrain_button.isEnabled()
    assert "v0002 is now the active parser model" in panel.retrain_phase.text()
    assert "v0001" in panel.rollback_button.toolTip()


def test_rolling_back_past_the_first_version_returns_to_the_starter_model(qtbot, tmp_path):
    _, window, panel = _window_with_a_model(qtbot, tmp_path)
    QTest.mouseClick(panel.rollback_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "starter model is now the active" in panel.retrain_phase.text(), timeout=30_000)
    assert window.ws.store.active_model("parser") is None
    assert panel.version_names() == ["v0001"] and not panel.rollback_button.isEnabled()


def test_pre_labeling_one_image_cannot_be_cancelled_half_way(qtbot, tmp_path):
    folder, window, panel = _window_with_a_model(qtbot, tmp_path)
    panel.start_prelabel_image(window.ws.session.image_id)
    assert panel.prelabel_task is not None and not panel.prelabel_cancel.isEnabled()
    qtbot.waitUntil(lambda: panel.prelabel_task is None, timeout=60_000)
    assert panel.prelabel_all_button.isEnabled()


def test_ctrl_l_says_in_the_status_bar_what_became_of_it_as_the_models_tab_may_be_hidden(qtbot, tmp_path):
    folder, window, panel = _window_with_a_model(qtbot, tmp_path)
    name = window.ws.session.record.name
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.statusBar().currentMessage() == "Pre-labeling this image…"
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert "A pre-labeling job is running" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: panel.prelabel_task is None, timeout=60_000)
    assert window.statusBar().currentMessage().startswith(f"{name} predicted by v0001")


def test_the_all_images_summary_says_what_was_left_alone_and_names_the_failures():
    from pathlib import Path

    from faceparse.app.gui.models_panel import run_summary
    from faceparse.core.prelabel import PrelabelResult

    result = PrelabelResult("done", 1, "v0002", Path("m.onnx"), "CPUExecutionProvider", "faces", predicted=2,
                            failed=[(f"bad{i}.jpg", "not a recognised image") for i in range(4)], skipped_current=3,
                            skipped_imported=10, seconds=1.5, notices=["note: tiny"])
    text = run_summary(result)
    assert text.startswith("2 predicted, 4 failed, in 1.5 s with v0002\n")
    assert "Left alone: 3 already current, 10 imported predictions kept (Pre-label All Images Again" in text
    assert "corrected or reviewed" not in text and "unreadable" not in text
    assert "bad0.jpg: not a recognised image" in text and "bad3.jpg" not in text and "… and 1 more" in text
    assert text.endswith("note: tiny")
    quiet = run_summary(PrelabelResult("cancelled", 1, "v1", Path("m"), "CPU", "faces", predicted=1))
    assert quiet == "Cancelled: 1 predicted, 0 failed, in 0.0 s with v1"


def test_pre_label_all_notices_a_photo_replaced_while_the_project_is_open(qtbot, tmp_path):
    import os

    from faceparse.core.synthetic import draw_face
    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    folder, window, panel = _window_with_a_model(qtbot, tmp_path)
    QTest.mouseClick(panel.prelabel_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.prelabel_task is None, timeout=60_000)
    assert "2 predicted" in panel.prelabel_status.text()
    photo = folder / window.ws.store.images()[1].relpath
    old = photo.stat().st_mtime_ns
    Image.fromarray(draw_face(4242, size=64)[0]).save(photo, "JPEG")
    os.utime(photo, ns=(old - 10**12, old - 10**12))
    QTest.mouseClick(panel.prelabel_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.prelabel_task is None, timeout=60_000)
    assert "1 predicted" in panel.prelabel_status.text(), panel.prelabel_status.text()


def test_retrain_with_nothing_corrected_says_so_and_starts_no_job(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64), tmp_path)
    panel = window.ws.models
    assert panel.start_retrain() is False
    assert "correct or review some images first" in panel.retrain_phase.text()
    assert window.ws.store.jobs(kind="retrain") == [] and panel.retrain_button.isEnabled()


def test_activate_and_roll_back_wait_while_a_retrain_runs(qtbot, tmp_path, monkeypatch):
    from faceparse.app.gui.model_jobs import RetrainBridge

    folder = make_project(tmp_path / "faces", count=2, size=64, predicted=False)
    with ProjectStore.open(folder) as store:
        _add_version(store, "v0001", {"miou_no_bg": 0.1})
        _add_version(store, "v0002", {"miou_no_bg": 0.2}, parent="v0001")
        store.set_active_model("parser", "v0002")
    window = open_window(qtbot, folder, tmp_path)
    panel = window.ws.models
    assert panel.activate_button.isEnabled() and panel.rollback_button.isEnabled()
    monkeypatch.setattr(RetrainBridge, "running", property(lambda self: True))
    panel.refresh_versions()
    assert not panel.activate_button.isEnabled() and not panel.rollback_button.isEnabled()
    monkeypatch.setattr(RetrainBridge, "running", property(lambda self: False))
    panel.refresh_versions()
    assert panel.activate_button.isEnabled() and panel.rollback_button.isEnabled()


def test_the_versions_list_shows_the_starter_and_a_version_whose_files_are_gone(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, size=64, predicted=False)
    with ProjectStore.open(folder) as store:
        _add_version(store, "v0001", {"miou_no_bg": 0.1})
        _add_version(store, "v0002", {"miou_no_bg": 0.2})
        (store.models_dir / "parser" / "v0001" / "model.safetensors").unlink()
    window = open_window(qtbot, folder, tmp_path)
    panel = window.ws.models
    rows = {panel.versions.topLevelItem(i).text(0): panel.versions.topLevelItem(i)
            for i in range(panel.versions.topLevelItemCount())}
    assert list(rows) == ["v0002", "v0001", "starter"] and panel.version_names() == ["v0002", "v0001"]
    assert rows["starter"].text(3) == "active" and rows["v0001"].text(3) == "files missing"
    panel.versions.setCurrentItem(rows["v0001"])
    assert not panel.activate_button.isEnabled()
    panel.versions.setCurrentItem(rows["v0002"])
    assert panel.activate_button.isEnabled()
    QTest.mouseClick(panel.activate_button, Qt.MouseButton.LeftButton)

    def starter_row():
        return next(panel.versions.topLevelItem(i) for i in range(panel.versions.topLevelItemCount())
                    if panel.versions.topLevelItem(i).text(0) == "starter")

    qtbot.waitUntil(lambda: starter_row().text(3) == "" and panel.activate_button.isEnabled(), timeout=30_000)
    assert window.ws.store.active_model("parser")["version"] == "v0002"
    panel.versions.setCurrentItem(starter_row())
    QTest.mouseClick(panel.activate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.ws.store.active_model("parser") is None, timeout=30_000)


def _panel_with_versions(qtbot, tmp_path, versions, active):
    """The models panel alone (no window) on a project holding the tiny `versions`, `active` the active one."""
    from faceparse.app.gui.workers import TaskRunner

    folder = make_project(tmp_path / "faces", count=2, size=64, predicted=False)
    store = ProjectStore.open(folder)
    for version in versions:
        _add_version(store, version, {"miou_no_bg": 0.1})
    store.set_active_model("parser", active)
    panel = ModelsPanel(store, TaskRunner())
    qtbot.addWidget(panel)
    return store, panel


def _row(panel, version):
    return next(panel.versions.topLevelItem(i) for i in range(panel.versions.topLevelItemCount())
                if panel.versions.topLevelItem(i).text(0) == version)


def _answer(monkeypatch, button):
    """QMessageBox.question answers `button`; returns the questions asked."""
    from faceparse.app.gui import models_panel

    asked = []

    def question(_parent, _title, text, *_args):
        asked.append(text)
        return button

    monkeypatch.setattr(models_panel.QMessageBox, "question", staticmethod(question))
    return asked


def test_delete_is_offered_only_for_a_trained_version_that_is_not_active(qtbot, tmp_path, monkeypatch):
    from faceparse.app.gui.model_jobs import RetrainBridge

    store, panel = _panel_with_versions(qtbot, tmp_path, ["v0001", "v0002"], active="v0002")
    try:
        panel.versions.setCurrentItem(None)
        assert not panel.delete_button.isEnabled()
        panel.versions.setCurrentItem(_row(panel, "v0002"))
        assert not panel.delete_button.isEnabled() and "activate another version first" in \
            panel.delete_button.toolTip()
        panel.versions.setCurrentItem(_row(panel, "starter"))
        assert not panel.delete_button.isEnabled()
        panel.versions.setCurrentItem(_row(panel, "v0001"))
        assert panel.delete_button.isEnabled() and panel.delete_button.toolTip() == "Delete v0001 and its files"
        monkeypatch.setattr(RetrainBridge, "running", property(lambda self: True))
        panel.refresh_versions()
        assert not panel.delete_button.isEnabled()
        monkeypatch.setattr(RetrainBridge, "running", property(lambda self: False))
        panel.refresh_versions()
        assert panel.delete_button.isEnabled()
    finally:
        panel.close_jobs()
        store.close()


def test_delete_asks_first_and_no_keeps_the_version(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    store, panel = _panel_with_versions(qtbot, tmp_path, ["v0001", "v0002"], active="v0002")
    try:
        asked = _answer(monkeypatch, QMessageBox.StandardButton.No)
        panel.versions.setCurrentItem(_row(panel, "v0001"))
        QTest.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
        assert len(asked) == 1 and "v0001" in asked[0] and "cannot be undone" in asked[0]
        assert panel.version_names() == ["v0002", "v0001"]
        assert store.model_version("parser", "v0001") is not None
        assert (store.models_dir / "parser" / "v0001").is_dir()
    finally:
        panel.close_jobs()
        store.close()


def test_delete_with_yes_removes_the_version_and_refreshes_the_list(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    store, panel = _panel_with_versions(qtbot, tmp_path, ["v0001", "v0002", "v0003"], active="v0003")
    try:
        asked = _answer(monkeypatch, QMessageBox.StandardButton.Yes)
        with qtbot.waitSignal(panel.versions_changed, timeout=5_000):
            panel.versions.setCurrentItem(_row(panel, "v0002"))
            QTest.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
        assert len(asked) == 1
        assert panel.version_names() == ["v0003", "v0001"]
        assert store.model_version("parser", "v0002") is None
        assert not (store.models_dir / "parser" / "v0002").exists()
        assert panel.retrain_phase.text().startswith("Deleted v0002 (")
        assert panel.versions.currentItem().text(0) == "v0001" and panel.delete_button.isEnabled()
    finally:
        panel.close_jobs()
        store.close()


def test_a_deletion_the_project_refuses_says_why_and_keeps_the_version(qtbot, tmp_path, monkeypatch):
    import os

    from PySide6.QtWidgets import QMessageBox

    store, panel = _panel_with_versions(qtbot, tmp_path, ["v0001", "v0002"], active="v0002")
    try:
        job = store.add_job("retrain", {"task": "parser", "init": "v0001"})
        store.update_job(job, state="running", pid=os.getpid())
        _answer(monkeypatch, QMessageBox.StandardButton.Yes)
        panel.versions.setCurrentItem(_row(panel, "v0001"))
        QTest.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
        assert f"v0001 was not deleted: parser v0001 is what training job {job} starts from" in \
            panel.retrain_phase.text()
        assert panel.version_names() == ["v0002", "v0001"]
        assert (store.models_dir / "parser" / "v0001").is_dir()
    finally:
        panel.close_jobs()
        store.close()


def test_the_framing_box_shows_the_mode_a_run_chose_and_a_change_makes_all_images_predict_again(qtbot, tmp_path):
    from faceparse.core.prelabel import MODE_SETTING

    folder, window, panel = _window_with_a_model(qtbot, tmp_path)
    assert panel.framing.currentData() is None and panel.framing.currentText() == "Automatic"
    QTest.mouseClick(panel.prelabel_all_button, Qt.MouseButton.LeftButton)
    assert not panel.framing.isEnabled()
    qtbot.waitUntil(lambda: panel.prelabel_task is None, timeout=60_000)
    assert panel.framing.isEnabled()
    chosen = window.ws.store.get_setting(MODE_SETTING)
    assert chosen is not None and panel.framing.currentData() == chosen

    panel.framing.setFocus()
    other = "whole_image" if chosen == "faces" else "faces"
    key = Qt.Key.Key_Down if panel.framing.findData(other) > panel.framing.currentIndex() else Qt.Key.Key_Up
    QTest.keyClick(panel.framing, key)
    assert panel.framing.currentData() == other
    assert window.ws.store.get_setting(MODE_SETTING) == other
    assert "predicts again" in panel.prelabel_status.text()
    QTest.mouseClick(panel.prelabel_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.prelabel_task is None, timeout=60_000)
    assert "2 predicted" in panel.prelabel_status.text(), panel.prelabel_status.text()
    assert panel.framing.currentData() == other
    with ProjectStore.open(folder) as store:
        assert all(r.predicted_with.startswith(other.replace("_", " ")) for r in store.images())


def test_pre_labeling_one_image_shows_where_it_really_ran(qtbot, tmp_path):
    _, window, panel = _window_with_a_model(qtbot, tmp_path)
    panel.start_prelabel_image(window.ws.session.image_id)
    qtbot.waitUntil(lambda: panel.prelabel_task is None, timeout=60_000)
    assert panel.device_label.text() == "CPU (last run: CPUExecutionProvider)"


def test_activating_a_version_that_must_be_exported_first_says_so_while_it_waits(qtbot, tmp_path, monkeypatch):
    from faceparse.core import versions

    folder, window, panel = _window_with_a_model(qtbot, tmp_path)
    with ProjectStore.open(folder) as store:
        _add_version(store, "v0002", {"miou_no_bg": 0.3}, parent="v0001")
        (store.models_dir / "parser" / "v0002" / "model.onnx").unlink()
    release = threading.Event()

    def slow_export(store, task, version, announce=None):
        announce(f"{task} {version} has no usable ONNX file; exporting it from its checkpoint first")
        assert release.wait(30)
        foreground_model(store.models_dir / task / version / "model.onnx")
    monkeypatch.setattr(versions, "ensure_onnx", slow_export)
    panel.refresh_versions()
    panel.versions.setCurrentItem(panel.versions.topLevelItem(0))
    panel.activate_selected()
    qtbot.waitUntil(lambda: "exporting it from its checkpoint first" in panel.retrain_phase.text(), timeout=10_000)
    assert panel.retrain_phase.text().startswith("Parser v0002 has no usable ONNX file")
    release.set()
    qtbot.waitUntil(lambda: "v0002 is now the active parser model" in panel.retrain_phase.text(), timeout=10_000)


def test_versions_changed_by_another_program_show_in_the_panel(qtbot, tmp_path):
    folder, window, panel = _window_with_a_model(qtbot, tmp_path)
    assert panel._versions_watch.isActive()
    changed = []
    panel.versions_changed.connect(lambda: changed.append(True))
    panel.follow_outside_changes()
    assert not changed
    with ProjectStore.open(folder) as store:  # as the command line would, while the studio is open
        _add_version(store, "v0002", {"miou_no_bg": 0.2}, parent="v0001")
        store.set_active_model("parser", "v0002")
    panel.follow_outside_changes()
    rows = {panel.versions.topLevelItem(i).text(0): panel.versions.topLevelItem(i).text(3)
            for i in range(panel.versions.topLevelItemCount())}
    assert rows["v0002"] == "active" and rows["v0001"] == "" and changed == [True]


def test_an_active_version_whose_files_are_gone_says_both(qtbot, tmp_path):
    folder, window, panel = _window_with_a_model(qtbot, tmp_path)
    (window.ws.store.models_dir / "parser" / "v0001" / "model.safetensors").unlink()
    panel.refresh_versions()
    assert panel.versions.topLevelItem(0).text(3) == "active, files missing"


def test_a_retrain_without_validation_faces_says_so_before_and_after(qtbot, tmp_path, monkeypatch):
    from faceparse.app.gui import models_panel

    text = ModelsPanel.describe_result({"version": "v0001", "metric": "miou_no_bg", "score": None,
                                        "baseline_version": None, "baseline_score": None,
                                        "baseline_source": "starter", "promoted": False, "data": {"val": 0}})
    assert "no validation faces" in text and "no active model before" not in text and "val. mIoU" in text
    folder = make_project(tmp_path / "faces", count=2, size=64, corrected=True)
    window = open_window(qtbot, folder, tmp_path)
    panel = window.ws.models
    monkeypatch.setattr(panel.retrain, "start", lambda config: 42)
    for has_val, warned in ((False, True), (True, False)):
        monkeypatch.setattr(models_panel, "has_validation_faces", lambda store, has_val=has_val: has_val)
        assert panel.start_retrain()
        assert ("cannot be measured" in panel.retrain_result.text()) == warned
        panel.retrain_button.setEnabled(True)


def test_a_cancelled_retrain_says_why_once(qtbot, tmp_path):
    from faceparse.core.jobs import JobEvent

    _, window, panel = _window_with_a_model(qtbot, tmp_path)
    panel._retrain_event(JobEvent("cancelled", message="cancelled during save; the previous model is still active"))
    assert panel.retrain_phase.text() == "Retrain cancelled."
    assert panel.retrain_result.text() == "Cancelled: cancelled during save; the previous model is still active"
