"""Closing the project (or opening another) while all images are pre-labeled: the user is asked first."""

import threading

from faceparse.core.prelabel import PrelabelProgress
from PIL import Image
from PySide6.QtCore import QTimer
from test_gui_helpers import make_project, open_window


def start_a_long_prelabel(qtbot, tmp_path, monkeypatch):
    """The studio with an All-images run that reports progress and then waits until it is cancelled."""
    stopped = threading.Event()

    def endless(store, device, report, cancel, redo=False):
        report(PrelabelProgress(done=3, total=40, failed=0, images_per_second=1.5, eta_seconds=25.0, elapsed=2.0))
        cancel.wait(60)
        stopped.set()
        raise RuntimeError("cancelled")

    monkeypatch.setattr("faceparse.app.gui.models_panel.prelabel_all", endless)
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64), tmp_path)
    window.ws.models.start_prelabel_all()
    qtbot.waitUntil(lambda: "3 of 40" in window.ws.models.prelabel_status.text())
    return window, stopped


def test_closing_during_all_images_asks_and_cancel_keeps_it_running(qtbot, tmp_path, monkeypatch):
    window, stopped = start_a_long_prelabel(qtbot, tmp_path, monkeypatch)
    asked = []
    monkeypatch.setattr(window, "_ask_stop_prelabel", lambda progress: asked.append(progress) or False)
    window.close()
    assert asked == ["3 of 40 images, 1.5/s, 25 s left"]
    assert window.isVisible() and window.ws is not None and window.ws.models.prelabel_task is not None
    assert not stopped.is_set()

    monkeypatch.setattr(window, "_ask_stop_prelabel", lambda progress: asked.append(progress) or True)
    window.close()
    assert len(asked) == 2 and window.ws is None
    assert stopped.wait(10)


def test_opening_another_project_during_all_images_asks_first(qtbot, tmp_path, monkeypatch):
    window, stopped = start_a_long_prelabel(qtbot, tmp_path, monkeypatch)
    first = window.ws.store.root
    other = make_project(tmp_path / "other", count=1, size=64)
    monkeypatch.setattr(window, "_ask_stop_prelabel", lambda progress: False)
    assert not window.open_folder(other)
    assert window.ws.store.root == first and not stopped.is_set()

    monkeypatch.setattr(window, "_ask_stop_prelabel", lambda progress: True)
    assert window.open_folder(other)
    assert window.ws.store.root == other.resolve()
    assert stopped.wait(10)
    window.close()


def test_keeping_the_run_when_opening_a_plain_folder_makes_no_project_there(qtbot, tmp_path, monkeypatch):
    window, stopped = start_a_long_prelabel(qtbot, tmp_path, monkeypatch)
    plain = tmp_path / "plain"
    plain.mkdir()
    Image.new("RGB", (32, 32)).save(plain / "a.png")
    monkeypatch.setattr(window, "_ask_stop_prelabel", lambda progress: False)
    assert not window.open_folder(plain, schema="celebamask-hq")
    assert not (plain / ".faceparse").exists() and not stopped.is_set()
    monkeypatch.setattr(window, "_ask_stop_prelabel", lambda progress: True)
    window.close()


def test_pre_labelling_one_image_does_not_ask(qtbot, tmp_path, monkeypatch):
    gate = threading.Event()
    monkeypatch.setattr("faceparse.app.gui.models_panel.prelabel_image",
                        lambda store, image_id, device, cache: gate.wait(10) and None)
    window = open_window(qtbot, make_project(tmp_path / "faces", count=2, size=64), tmp_path)
    window.ws.models.start_prelabel_image(window.ws.session.image_id)
    assert window.ws.models.prelabel_task is not None
    monkeypatch.setattr(window, "_ask_stop_prelabel", lambda progress: (_ for _ in ()).throw(AssertionError("asked")))
    QTimer.singleShot(300, gate.set)
    window.close()
    assert window.ws is None
