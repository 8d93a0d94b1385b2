"""`faceparse train` follows a job that runs in its own session: closing the terminal or `kill` must cancel it,
as Ctrl-C does, rather than leave it training (and perhaps promoting a model) with nobody watching."""

import io
import os
import signal

import pytest
from faceparse.app.commands.train import ProgressView, follow
from faceparse.core.jobs import JobEvent


class FakeJob:
    """Events as a real job handle gives them: a queue that a new `events()` call goes on reading."""

    def __init__(self, signum):
        self.signum = signum
        self.cancelled = 0
        self.process = self
        self.queue = [JobEvent("train", step=1, total=3, loss=0.5, message="epoch 1/3"), "signal",
                      JobEvent("train", step=2, total=3, loss=0.4, message="epoch 2/3"),
                      JobEvent("cancelled", message="cancelled during train")]

    def events(self):
        while self.queue:
            item = self.queue.pop(0)
            if item == "signal":
                os.kill(os.getpid(), self.signum)
                continue
            yield item

    def cancel(self):
        self.cancelled += 1

    def kill(self):
        raise AssertionError("one signal must cancel, not kill")

    def wait(self):
        return "outcome"


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_hangup_or_terminate_signal_cancels_the_followed_job(name):
    if not hasattr(signal, name):
        pytest.skip(f"no {name} here")
    signum = getattr(signal, name)
    before = signal.getsignal(signum)
    job = FakeJob(signum)
    assert follow(job, ProgressView(io.StringIO())) == ("outcome", True)
    assert job.cancelled == 1
    assert signal.getsignal(signum) == before
