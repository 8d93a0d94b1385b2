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
    raise stops the pipeline and is re-raised by `run`. `on_writer_end()` is called in the writer thread as it ends
    (to release what the callbacks opened there).
    """

    def __init__(self, predictor: Predictor, framing: Framing, readers: int = 1, prefetch: int | None = None,
                 uncertainty: str = "entropy"):
        if uncertainty not in METHODS:
            raise ValueError(f"uncertainty must be one of {', '.join(METHODS)}, got {uncertainty!r}")
        self.predictor = predictor
        self.framing = framing
        self.readers = max(1, int(readers))
        self.prefetch = int(prefetch) if prefetch else max(4, 2 * predictor.batch_size)
        self.uncertainty = uncertainty
        self.helper_niceness = HELPER_NICENESS

    def run(self, items: Iterable[tuple[Any, str | os.PathLike]],
            on_result: Callable[[Any, ImagePrediction], None], on_error: Callable[[Any, str], None],
            should_stop: Callable[[], bool] = lambda: False,
            on_batch: Callable[[], None] | None = None,
            on_writer_end: Callable[[], None] | None = None) -> PipelineStats:
        stats = PipelineStats()
        stats_lock = threading.Lock()
        source: Iterator = iter(items)
        source_lock = threading.Lock()
        source_empty = threading.Event()
        halt = threading.Event()
        alone = threading.Event()  # the helpers are retired: the model's thread does everything
        prepared_q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        written_q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        fatal: list[BaseException] = []
        input_size = self.predictor.input_size

        def put(q: queue.Queue, item: Any) -> bool:
            while not halt.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def next_entry(timeout: float = -1) -> Any:
            """The next (key, path), `_DONE` at the end, or None when another thread holds the source too long."""
            if source_empty.is_set() or not source_lock.acquire(timeout=timeout):
                return _DONE if source_empty.is_set() else None
            try:
                entry = next(source, _DONE)
            finally:
                source_lock.release()
            if entry is _DONE:
                source_empty.set()
            return entry

        def prepare(key: Any, path: str | os.PathLike) -> Any:
            try:
                return prepare_file(key, path, self.framing, input_size)
            except ImageLoadError as error:
                return _Failed(key, error.reason, error.lasting)
            except (MemoryError, OSError) as error:
                return _Failed(key, f"cannot prepare the image ({type(error).__name__}: {error})", lasting=False)
            except Exception as error:  # a decoder or detector failing on one odd file
                return _Failed(key, f"cannot prepare the image ({type(error).__name__}: {error})")

        def prepare_here() -> Any:
            """An image the model's thread prepares itself because the readers have none ready (None: no more)."""
            entry = next_entry(timeout=0.05)
            if entry is None or entry is _DONE:
                return None
            stats.prepared_here += 1
            return prepare(*entry)

        def finish(item: Any) -> None:
            if isinstance(item, _Failed):
                on_error(item.key, item.reason, item.lasting)
                return
            result = finish_image(item.prepared, item.results, self.uncertainty)
            on_result(item.prepared.key, result)
            with stats_lock:
                stats.images += 1

        def hand_on(item: Any) -> None:
            """To the writer, or finished here when the writer is behind (its queue is full) or retired."""
            if not alone.is_set():
                try:
                    written_q.put_nowait(item)
                    return
                except queue.Full:
                    pass
            with stats_lock:
                stats.finished_here += 1
            finish(item)

        def take_over_writing() -> None:
            with contextlib.suppress(queue.Empty):
                while not fatal:
                    item = written_q.get_nowait()
                    with stats_lock:
                        stats.finished_here += 1
                    finish(item)

        def read() -> None:
            stats.helper_scheduling = run_in_background(self.helper_niceness)
            try:
                while not halt.is_set() and not alone.is_set():
                    entry = next_entry()
                    if entry is _DONE:
                        break
                    if not put(prepared_q, prepare(*entry)):
                        break
            except BaseException as error:
                fatal.append(error)
                halt.set()
            finally:
                put(prepared_q, _DONE)

        def write() -> None:
            run_in_background(self.helper_niceness)
            try:
                while True:
                    item = written_q.get()
                    if item is _DONE:
                        return
                    if fatal:
                        continue
                    try:
                        finish(item)
                    except BaseException as error:
                        fatal.append(error)
                        halt.set()
            finally:
                if on_writer_end is not None:
                    on_writer_end()

        readers = [threading.Thread(target=read, name=f"prelabel-reader-{i}", daemon=True)
                   for i in range(self.readers)]
        writer = threading.Thread(target=write, name="prelabel-writer", daemon=True)
        for thread in (*readers, writer):
            thread.start()

        waiting: deque[tuple[_Pending, int]] = deque()
        finished_readers = 0
        batch_size = self.predictor.batch_size
        helped: deque[bool] = deque(maxlen=STARVATION_WINDOW)
        try:
            while not halt.is_set() and not should_stop():
                did_work = stats.prepared_here + stats.finished_here
                while len(waiting) < batch_size:
                    try:
                        item = prepared_q.get_nowait()
                    except queue.Empty:
                        item = prepare_here()
                    if item is None:
                        if waiting or finished_readers >= self.readers:
                            break
                        started = time.perf_counter()
                        try:
                            item = prepared_q.get(timeout=0.1)
                        except queue.Empty:
                            item = None
                        stats.wait_seconds += time.perf_counter() - started
                        if item is None:
                            if halt.is_set() or should_stop():
                                break
                            continue
                    if item is _DONE:
                        finished_readers += 1
                    elif isinstance(item, _Failed):
                        hand_on(item)
                        if on_batch is not None:
                            on_batch()  # a run of unreadable files still moves the progress and sees a cancel
                        if should_stop():
                            break
                    else:
                        pending = _Pending(item, [None] * len(item.crops), len(item.crops))
                        waiting.extend((pending, i) for i in range(len(item.crops)))
                if not waiting:
                    if finished_readers >= self.readers:
                        break
                    continue
                if halt.is_set() or should_stop():
                    break
                batch = [waiting.popleft() for _ in range(min(batch_size, len(waiting)))]
                crops = np.stack([pending.prepared.crops[i] for pending, i in batch])
                started = time.perf_counter()
                faces = self.predictor.predict(crops)
                stats.model_seconds += time.perf_counter() - started
                stats.batches += 1
                stats.faces += len(batch)
                for (pending, i), face in zip(batch, faces, strict=True):
                    pending.results[i] = face
                    pending.remaining -= 1
                    if pending.remaining == 0:
                        done = pending.prepared.crops
                        pending.prepared.crops = np.empty((0, *done.shape[1:]), done.dtype)  # free the crops early
                        hand_on(pending)
                if stats.batches > 1:
                    helped.append(stats.prepared_here + stats.finished_here > did_work)
                    if sum(helped) >= STARVATION_WINDOW // 2 and not alone.is_set():
                        alone.set()  # other programs starve the helpers: no more handing work to them
                        stats.helpers_retired = True
                        take_over_writing()
                if on_batch is not None:
                    on_batch()
        finally:
            halt.set()
            with contextlib.suppress(queue.Empty):
                while True:
                    prepared_q.get_nowait()
            for thread in readers:
                thread.join()
            try:
                take_over_writing()  # what the writer has not started is finished here, not left to a slow thread
            except BaseException as error:
                fatal.append(error)
            written_q.put(_DONE)
            writer.join()
        if fatal:
            raise fatal[0]
        return stats
