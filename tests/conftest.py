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
