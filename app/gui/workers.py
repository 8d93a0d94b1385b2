"""Running core work off the GUI thread and bringing its progress and result back as Qt signals.

The window must never freeze, so anything that reads many files, writes a mask or trains runs on a pool thread. The
work itself is an ordinary core call (`fn(report, cancel_event)`), the same one the command line makes; this module
only moves its progress and result to the GUI thread through queued signals.

`SerialWriter` runs store writes one at a time in submission order, so "save, then mark reviewed" can never land in
the opposite order, and closing the window can wait until every write is on disk.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from faceparse.core.export import ExportCancelled
from faceparse.core.formats.base import ExportError, LabelFormatError
from faceparse.core.imageio import ImageLoadError
from faceparse.core.importer import ImportCancelled, ImportFailed, ImportRefused
from faceparse.core.predictor import ModelError
from faceparse.core.schemas import SchemaError
from faceparse.core.store import ProjectError
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal

QUEUED = Qt.ConnectionType.QueuedConnection
# Failures whose message already says everything (which file, why): a traceback on stderr would add only noise.
EXPLAINED_ERRORS = (ImageLoadError, ProjectError, ExportError, ExportCancelled, LabelFormatError, ImportRefused,
                    ImportFailed, ImportCancelled, SchemaError, ModelError)


class TaskSignals(QObject):
    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)


class Task(QRunnable):
    """One call `fn(report, cancel_event)` on a pool thread; `report(event)` forwards progress to the GUI."""

    def __init__(self, fn: Callable[[Callable[[Any], None], threading.Event], Any]):
        super().__init__()
        self.setAutoDelete(False)
        self.fn = fn
        self.cancel_event = threading.Event()
        self.signals = TaskSignals()
        self.done = threading.Event()

    def report(self, event: Any) -> None:
        self.signals.progress.emit(event)

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def run(self) -> None:
        try:
            result = self.fn(self.report, self.cancel_event)
        except Exception as e:  # noqa: BLE001 - every failure is shown to the user, never lost in a thread
            if not isinstance(e, EXPLAINED_ERRORS):
                traceback.print_exc()
            self.done.set()
            self.signals.failed.emit(str(e) or type(e).__name__)
        else:
            self.done.set()
            self.signals.finished.emit(result)


class TaskRunner(QObject):
    """Starts Tasks on its own pool and keeps them alive until they end."""

    def __init__(self, threads: int = 2, parent: QObject | None = None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max(1, threads))
        self.pool.setExpiryTimeout(-1)  # keep the threads: each one that touched a project holds a connection to it
        self._live: set[Task] = set()

    def start(self, fn: Callable, on_done: Callable[[Any], None] | None = None,
              on_error: Callable[[str], None] | None = None,
              on_progress: Callable[[Any], None] | None = None) -> Task:
        task = Task(fn)
        self._live.add(task)
        if on_progress is not None:
            task.signals.progress.connect(on_progress, QUEUED)
        if on_done is not None:
            task.signals.finished.connect(on_done, QUEUED)
        if on_error is not None:
            task.signals.failed.connect(on_error, QUEUED)
        task.signals.finished.connect(lambda _r, t=task: self._live.discard(t), QUEUED)
        task.signals.failed.connect(lambda _m, t=task: self._live.discard(t), QUEUED)
        self.pool.start(task)
        return task

    @property
    def busy(self) -> bool:
        return any(not t.done.is_set() for t in self._live)

    def cancel_all(self) -> None:
        for task in list(self._live):
            task.cancel()

    def wait(self, msecs: int = -1) -> bool:
        return self.pool.waitForDone(msecs)


class SerialWriter(TaskRunner):
    """Store writes, one at a time, in the order they were submitted."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(threads=1, parent=parent)

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[str], None] | None = None) -> Task:
        return self.start(lambda _report, _cancel: fn(), on_done, on_error)
