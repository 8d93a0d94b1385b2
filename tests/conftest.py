"""Test-wide settings: Qt renders offscreen, no model hub is ever contacted, torch stays on few threads."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        pass
    yield


@pytest.fixture
def torch_one_thread():
    """One torch thread for the test (tiny networks run faster without threading overhead), restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _closing_stops_pre_labelling(request, monkeypatch):
    """Closing the studio while "All images" runs asks whether to stop it, and a modal question nobody answers
    would hold the test forever. Windows opened on projects pre-label them on opening, so any test may close one
    mid-run: the answer is "stop" unless a test asks about the question itself (it patches the window)."""
    if "qtbot" not in request.fixturenames:
        yield
        return
    from faceparse.app.gui.main_window import MainWindow

    monkeypatch.setattr(MainWindow, "_ask_stop_prelabel", lambda self, progress: True)
    yield


@pytest.fixture
def unchecked_photos_train(monkeypatch):
    """Every photo nobody has checked yet is taken as bound for training, so masked pre-training learns from all of
    them: tests that count what pre-training sees do not depend on which of their few photos' hashes fall in the
    validation share. `test_pretrain_split` checks the real rule."""
    from faceparse.core import pretrain
    from faceparse.core.datasets import image_split

    monkeypatch.setattr(pretrain, "future_split", lambda store, record: image_split(record) or "train")


_CALL_PASSED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[_CALL_PASSED] = report.passed
    return report


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item):
    """The windows a test leaves open are closed at its teardown. A test that failed half way may leave an edit
    unsaved or a retrain running, and the question closing then asks would wait forever for an answer and hold the
    whole run: here it is answered (discard, stop), and a test that passed yet left a question to answer fails."""
    if "qtbot" not in getattr(item, "fixturenames", ()):
        return (yield)
    from faceparse.app.gui.main_window import MainWindow
    from PySide6.QtWidgets import QMessageBox

    asked = []

    def discard(self, *args, **kwargs):
        asked.append("unsaved masks")
        return QMessageBox.StandardButton.Discard

    def stop(self, *args, **kwargs):
        asked.append("a running retrain")
        return True

    patches = {"_ask_unsaved": discard, "_ask_stop_retrain": stop}
    kept = {name: MainWindow.__dict__[name] for name in patches}
    for name, answer in patches.items():
        setattr(MainWindow, name, answer)
    try:
        result = yield
    finally:
        for name, method in kept.items():
            setattr(MainWindow, name, method)
    if asked and item.stash.get(_CALL_PASSED, False):
        pytest.fail(f"the test left the window with {' and '.join(asked)} to ask about on closing")
    return result
