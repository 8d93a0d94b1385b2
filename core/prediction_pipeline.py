"""Image files in, full-picture masks out, with decoding, the model and the paste-back overlapping.

Reader threads decode and frame images ahead of the model, and a writer thread pastes masks back and hands them on,
so the model waits neither on the disk nor on PNG encoding. The helpers run behind the model's threads, and the
model's thread does their work itself whenever other programs starve them.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from faceparse.core.framing import Framing, ImagePrediction, PreparedImage, finish_image, prepare_file
from faceparse.core.imageio import ImageLoadError
from faceparse.core.predictor import FacePrediction, Predictor
from faceparse.core.uncertainty import METHODS

STARVATION_WINDOW = 8
"""The model's thread takes over the helpers' work for good when it had to help them in half of this many
consecutive batches (other programs are keeping the cores busy)."""
HELPER_NICENESS = 5
"""Where the idle scheduling class is unavailable, how much lower the decoding and writing threads run than the
model's threads (Linux scheduling priority)."""


def run_in_background(niceness: int = HELPER_NICENESS) -> str:
    """Move the calling thread behind the model's threads and say how: "idle" or "nice +N" (or "" where threads
    have no priority of their own).

    On Linux every thread has its own scheduling. In the idle class a thread runs only on a core the model's threads
    leave free (between operators, while one waits for the other) and never pre-empts one of them mid-operator,
    which would leave the other waiting for it; a positive nice value is the fallback. Other programs can starve an
    idle thread, so the pipeline does the helpers' work in the model's thread whenever they fall behind."""
    if not hasattr(threading, "get_native_id"):
        return ""
    tid = threading.get_native_id()
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            return "idle"
    if niceness <= 0 or not hasattr(os, "setpriority"):
        return ""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
        return f"nice +{niceness}"
    return ""


@dataclass
class PipelineStats:
    images: int = 0
    faces: int = 0
    batches: int = 0
    model_seconds: float = 0.0
    wait_seconds: float = 0.0
    """Time the model loop spent waiting for decoded images: near zero when decoding keeps up."""
    prepared_here: int = 0
    """Images the model's thread decoded itself because the readers had none ready."""
    finished_here: int = 0
    """Images the model's thread finished and handed on itself because the writer was behind."""
    helpers_retired: bool = False
    """Whether the helpers fell behind so often that the model's thread took over all their work."""
    helper_scheduling: str = ""
    """How the decoding and writing threads ran behind the model's: "idle", "nice +N" or "" (see
    `run_in_background`)."""


@dataclass
class _Failed:
    key: Any
    reason: str
    lasting: bool = True


@dataclass
class _Pending:
    prepared: PreparedImage
    results: list[FacePrediction | None]
    remaining: int


_DONE = object()


class PredictionPipeline:
    """Images in, full-picture masks out: decoding, model and paste-back overlap.

    Reader threads decode and frame images ahead of the model, and a writer thread pastes masks back and hands
    them on; both run behind the model's threads (`run_in_background`). When they fall behind (other programs
    keep the cores busy), the model's thread does their work itself rather than wait for them.

    `on_result(key, ImagePrediction)` and `on_error(key, reason, lasting)` are called as images complete (`lasting`
    is False when the cause may pass, such as a locked or vanished file), one image per call,
    from the writer thread or from the thread that called `run`, so they must be thread-safe; an exception they
    raise stops the pipeline and is re-raised by `run`. `on_helper_end()` is called in each reader thread and in the
    writer thread as it ends (to release what the framing and the callbacks opened there, such as a connection to
    the project's database).
    """

    def __init__(self, predictor: Predictor, framing: Framing, readers: int = 1, prefetch: int | None = None,
                 uncertainty: str = "entropy"):
        if uncertainty not in METHODS:
            raise ValueError(f"uncertainty must be one of {', '.join(METHODS)}, got {uncertainty!r}")
        self.predictor = predictor
        info = getattr(predictor, "info", None)
        self.framing = framing.for_model(info.classes) if info is not None else framing
        self.readers = max(1, int(readers))
        self.prefetch = int(prefetch) if prefetch else max(4, 2 * predictor.batch_size)
        self.uncertainty = uncertainty
        self.helper_niceness = HELPER_NICENESS

    def run(self, items: Iterable[tuple[Any, str | os.PathLike]],
            on_result: Callable[[Any, ImagePrediction], None], on_error: Callable[[Any, str], None],
            should_stop: Callable[[], bool] = lambda: False,
            on_batch: Callable[[], None] | None = None,
            on_helper_end: Callable[[], None] | None = None) -> PipelineStats:
        return _PipelineRun(self, items, on_result, on_error, should_stop, on_batch, on_helper_end).run()


class _PipelineRun:
    """One `PredictionPipeline.run`: its queues, events and statistics, the reader and writer threads' jobs and the
    model loop in the thread that called `run`."""

    def __init__(self, pipeline: PredictionPipeline, items: Iterable[tuple[Any, str | os.PathLike]],
                 on_result: Callable[[Any, ImagePrediction], None], on_error: Callable[..., None],
                 should_stop: Callable[[], bool], on_batch: Callable[[], None] | None,
                 on_helper_end: Callable[[], None] | None):
        self.pipeline = pipeline
        self.on_result = on_result
        self.on_error = on_error
        self.should_stop = should_stop
        self.on_batch = on_batch
        self.on_helper_end = on_helper_end
        self.stats = PipelineStats()
        self.stats_lock = threading.Lock()
        self.source: Iterator = iter(items)
        self.source_lock = threading.Lock()
        self.source_empty = threading.Event()
        self.halt = threading.Event()
        self.alone = threading.Event()  # the helpers are retired: the model's thread does everything
        self.prepared_q: queue.Queue = queue.Queue(maxsize=pipeline.prefetch)
        self.written_q: queue.Queue = queue.Queue(maxsize=pipeline.prefetch)
        self.fatal: list[BaseException] = []
        self.input_size = pipeline.predictor.input_size
        self.batch_size = pipeline.predictor.batch_size
        self.waiting: deque[tuple[_Pending, int]] = deque()
        self.finished_readers = 0
        self.helped: deque[bool] = deque(maxlen=STARVATION_WINDOW)

    def run(self) -> PipelineStats:
        reader_threads = [threading.Thread(target=self.read, name=f"prelabel-reader-{i}", daemon=True)
                          for i in range(self.pipeline.readers)]
        writer_thread = threading.Thread(target=self.write, name="prelabel-writer", daemon=True)
        for thread in (*reader_threads, writer_thread):
            thread.start()
        try:
            self.predict_all()
        finally:
            self.shut_down(reader_threads, writer_thread)
        if self.fatal:
            raise self.fatal[0]
        return self.stats

    # --- the helpers' work, done in their threads or in the model's -----------------------------------------

    def put(self, q: queue.Queue, item: Any) -> bool:
        while not self.halt.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def next_entry(self, timeout: float = -1) -> Any:
        """The next (key, path), `_DONE` at the end, or None when another thread holds the source too long."""
        if self.source_empty.is_set() or not self.source_lock.acquire(timeout=timeout):
            return _DONE if self.source_empty.is_set() else None
        try:
            entry = next(self.source, _DONE)
        finally:
            self.source_lock.release()
        if entry is _DONE:
            self.source_empty.set()
        return entry

    def prepare(self, key: Any, path: str | os.PathLike) -> Any:
        try:
            return prepare_file(key, path, self.pipeline.framing, self.input_size)
        except ImageLoadError as error:
            return _Failed(key, error.reason, error.lasting)
        except (MemoryError, OSError) as error:
            return _Failed(key, f"cannot prepare the image ({type(error).__name__}: {error})", lasting=False)
        except Exception as error:  # a decoder or detector failing on one odd file
            return _Failed(key, f"cannot prepare the image ({type(error).__name__}: {error})")

    def prepare_here(self) -> Any:
        """An image the model's thread prepares itself because the readers have none ready (None: no more)."""
        entry = self.next_entry(timeout=0.05)
        if entry is None or entry is _DONE:
            return None
        self.stats.prepared_here += 1
        return self.prepare(*entry)

    def finish(self, item: Any) -> None:
        if isinstance(item, _Failed):
            self.on_error(item.key, item.reason, item.lasting)
            return
        try:
            result = finish_image(item.prepared, item.results, self.pipeline.uncertainty)
        except MemoryError as error:  # the photo-sized maps of one huge photo: that photo fails, not the run
            self.on_error(item.prepared.key, f"cannot paste the prediction back ({type(error).__name__}: {error})",
                          False)
            return
        self.on_result(item.prepared.key, result)
        with self.stats_lock:
            self.stats.images += 1

    def hand_on(self, item: Any) -> None:
        """To the writer, or finished here when the writer is behind (its queue is full) or retired."""
        if not self.alone.is_set():
            try:
                self.written_q.put_nowait(item)
                return
            except queue.Full:
                pass
        with self.stats_lock:
            self.stats.finished_here += 1
        self.finish(item)

    def take_over_writing(self) -> None:
        with contextlib.suppress(queue.Empty):
            while not self.fatal:
                item = self.written_q.get_nowait()
                with self.stats_lock:
                    self.stats.finished_here += 1
                self.finish(item)

    # --- the helper threads ---------------------------------------------------------------------------------

    def read(self) -> None:
        self.stats.helper_scheduling = run_in_background(self.pipeline.helper_niceness)
        try:
            while not self.halt.is_set() and not self.alone.is_set():
                entry = self.next_entry()
                if entry is _DONE:
                    break
                if not self.put(self.prepared_q, self.prepare(*entry)):
                    break
        except BaseException as error:
            self.fatal.append(error)
            self.halt.set()
        finally:
            self.put(self.prepared_q, _DONE)
            self.helper_ends()

    def write(self) -> None:
        run_in_background(self.pipeline.helper_niceness)
        try:
            while True:
                item = self.written_q.get()
                if item is _DONE:
                    return
                if self.fatal:
                    continue
                try:
                    self.finish(item)
                except BaseException as error:
                    self.fatal.append(error)
                    self.halt.set()
        finally:
            self.helper_ends()

    def helper_ends(self) -> None:
        if self.on_helper_end is not None:
            self.on_helper_end()

    # --- the model loop, in the thread that called `run` ----------------------------------------------------

    def predict_all(self) -> None:
        while not self.halt.is_set() and not self.should_stop():
            did_work = self.stats.prepared_here + self.stats.finished_here
            self.gather()
            if not self.waiting:
                if self.finished_readers >= self.pipeline.readers:
                    break
                continue
            if self.halt.is_set() or self.should_stop():
                break
            self.predict_batch()
            if self.stats.batches > 1:
                self.watch_helpers(did_work)
            if self.on_batch is not None:
                self.on_batch()

    def gather(self) -> None:
        """Fill `waiting` with up to a batch of crops, handing unreadable images on as they come."""
        while len(self.waiting) < self.batch_size:
            item = self.next_prepared()
            if item is None:
                return
            if item is _DONE:
                self.finished_readers += 1
            elif isinstance(item, _Failed):
                self.hand_on(item)
                if self.on_batch is not None:
                    self.on_batch()  # a run of unreadable files still moves the progress and sees a cancel
                if self.should_stop():
                    return
            else:
                pending = _Pending(item, [None] * len(item.crops), len(item.crops))
                self.waiting.extend((pending, i) for i in range(len(item.crops)))

    def next_prepared(self) -> Any:
        """A prepared image, `_Failed` or `_DONE` from the readers or prepared here, or None to stop gathering:
        crops are waiting or the readers are done, or the run halts or is cancelled while nothing is ready."""
        while True:
            try:
                item = self.prepared_q.get_nowait()
            except queue.Empty:
                item = self.prepare_here()
            if item is not None:
                return item
            if self.waiting or self.finished_readers >= self.pipeline.readers:
                return None
            started = time.perf_counter()
            try:
                item = self.prepared_q.get(timeout=0.1)
            except queue.Empty:
                item = None
            self.stats.wait_seconds += time.perf_counter() - started
            if item is not None:
                return item
            if self.halt.is_set() or self.should_stop():
                return None

    def predict_batch(self) -> None:
        batch = [self.waiting.popleft() for _ in range(min(self.batch_size, len(self.waiting)))]
        crops = np.stack([pending.prepared.crops[i] for pending, i in batch])
        started = time.perf_counter()
        faces = self.pipeline.predictor.predict(crops)
        self.stats.model_seconds += time.perf_counter() - started
        self.stats.batches += 1
        self.stats.faces += len(batch)
        for (pending, i), face in zip(batch, faces, strict=True):
            pending.results[i] = face
            pending.remaining -= 1
            if pending.remaining == 0:
                done = pending.prepared.crops
                pending.prepared.crops = np.empty((0, *done.shape[1:]), done.dtype)  # free the crops early
                self.hand_on(pending)

    def watch_helpers(self, did_work: int) -> None:
        """Retire the helpers when the model's thread had to do their work in half of the recent batches."""
        self.helped.append(self.stats.prepared_here + self.stats.finished_here > did_work)
        if sum(self.helped) >= STARVATION_WINDOW // 2 and not self.alone.is_set():
            self.alone.set()  # other programs starve the helpers: no more handing work to them
            self.stats.helpers_retired = True
            self.take_over_writing()

    def shut_down(self, reader_threads: list[threading.Thread], writer_thread: threading.Thread) -> None:
        self.halt.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self.prepared_q.get_nowait()
        for thread in reader_threads:
            thread.join()
        try:
            self.take_over_writing()  # what the writer has not started is finished here, not left to a slow thread
        except BaseException as error:
            self.fatal.append(error)
        self.written_q.put(_DONE)
        writer_thread.join()
