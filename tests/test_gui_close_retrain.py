"""Closing the project while a retrain runs: the user is asked first, and the stop keeps the window drawing."""

from faceparse.app.gui.model_jobs import RetrainBridge
from faceparse.core.store import ProjectStore
from test_gui_helpers import make_project, open_window


def start_a_long_retrain(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=6, size=64, predicted=False, corrected=True)
    window = open_window(qtbot, folder, tmp_path)
    panel = window.ws.models
    panel.epochs.setValue(200)
    panel.extra_options = {"input_size": 32, "batch_size": 2, "init": "scratch", "threads": 1,
                           "export_onnx": False, "repredict": False, "pretrain": False, "patience": 0,
                           "time_limit_s": None}
    assert panel.start_retrain()
    qtbot.waitUntil(lambda: any(e.phase == "train" for e in panel.events), timeout=300_000)
    return folder, window, panel


def test_closing_during_a_retrain_asks_and_cancel_keeps_it_running(qtbot, tmp_path, monkeypatch):
    folder, window, panel = start_a_long_retrain(qtbot, tmp_path)
    job_id = panel.retrain.handle.job_id
    asked = []
    monkeypatch.setattr(window, "_ask_stop_retrain", lambda: asked.append(True) or False)
    window.close()
    assert asked and window.isVisible() and window.ws is not None
    assert panel.retrain.running and panel.retrain.handle.process.poll() is None

    monkeypatch.setattr(window, "_ask_stop_retrain", lambda: asked.append(True) or True)
    process = panel.retrain.handle.process
    window.close()
    assert len(asked) == 2 and not window.isVisible() and window.ws is None
    assert process.poll() is not None
    with ProjectStore.open(folder) as store:
        assert store.job(job_id)["state"] == "cancelled"
        assert store.model_versions("parser") == []


def test_closing_without_a_retrain_does_not_ask(qtbot, tmp_path, monkeypatch):
    folder = make_project(tmp_path / "faces", count=2, size=64)
    window = open_window(qtbot, folder, tmp_path)
    monkeypatch.setattr(window, "_ask_stop_retrain", lambda: (_ for _ in ()).throw(AssertionError("asked")))
    window.close()
    assert window.ws is None


class SlowHandle:
    """A job that ends on the third look after its cancel."""

    def __init__(self):
        self.looks = 0
        self.cancelled = False

    def cancel(self):
        self.cancelled = True

    def wait(self, timeout=None):
        self.looks += 1
        if self.looks < 3:
            raise TimeoutError
        return None

    @property
    def running(self):
        return self.looks < 3


def test_stopping_a_slow_job_keeps_the_event_loop_turning(qtbot, tmp_path):
    bridge = RetrainBridge(tmp_path)
    bridge.handle = SlowHandle()
    pumped = []
    assert bridge.stop(pump=lambda: pumped.append(True))
    assert bridge.handle.cancelled and len(pumped) == 2


def test_a_job_that_will_not_stop_is_given_up_after_the_timeout(qtbot, tmp_path):
    bridge = RetrainBridge(tmp_path)
    bridge.handle = SlowHandle()
    bridge.handle.wait = lambda timeout=None: (_ for _ in ()).throw(TimeoutError())
    assert not bridge.stop(pump=lambda: None, timeout_s=0.05)
