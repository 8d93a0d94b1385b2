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
