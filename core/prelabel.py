"""Pre-labeling: every image of a project gets a predicted mask before the annotator touches it.

Two layers. `PredictionPipeline` turns image files into full-image masks: reader threads decode and frame the faces
while the model runs on the previous batch, and a writer thread pastes masks back and hands them on, so the model
waits neither on the disk nor on PNG encoding. `PrelabelJob` drives it over a project: it decides what needs a
prediction (nothing corrected or reviewed, nothing already predicted by this model from this file), stores each
result atomically as it completes, records bad images without stopping, and can be cancelled and resumed.

The job is a plain object: the GUI calls `run` in a worker thread, the command line in its main thread. Callbacks
are made from the thread that called `run`.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from faceparse.core.faces import (
    DEFAULT_MARGIN,
    FACES,
    MODES,
    WHOLE_IMAGE,
    CropBox,
    FaceDetector,
    HaarFaceDetector,
    crop,
    face_crop_box,
    paste_masks,
    suggest_mode,
    whole_image_box,
)
from faceparse.core.imageio import ImageLoadError, load_rgb, read_size
from faceparse.core.model_resolver import ModelNotFoundError, find_model, task_for_schema
from faceparse.core.predictor import UNCERTAINTY_STRIDE, FacePrediction, ModelError, Predictor
from faceparse.core.schemas import LabelSchema, get_schema
from faceparse.core.store import ImageRecord, MaskError, ProjectError, ProjectStore
from faceparse.core.uncertainty import METHODS, FaceUncertainty, face_uncertainty, image_uncertainty

MODE_SETTING = "prelabel.mode"
JOB_KIND = "prelabel"
SUGGESTION_SAMPLE = 8
SUGGESTION_SIDE = 1024
JOB_UPDATE_SECONDS = 1.0
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


# --- one image -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Framing:
    """How faces are cut out of a picture. In FACES mode a picture where no face is found is parsed whole."""

    mode: str = FACES
    detector: FaceDetector | None = None
    margin: float = DEFAULT_MARGIN

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.mode == FACES and self.detector is None:
            object.__setattr__(self, "detector", HaarFaceDetector())


def prediction_settings(mode: str, tta: bool, margin: float = DEFAULT_MARGIN) -> str:
    """How a prediction was made, in words stored with it: a run with other settings predicts it again."""
    framing = f"faces, margin {margin:g}" if mode == FACES else mode.replace("_", " ")
    return f"{framing}, flip TTA" if tta else framing


@dataclass
class PreparedImage:
    """A decoded picture reduced to what the model and the paste-back need: its size, its crops and where they
    came from (in the picture's own pixels)."""

    key: Any
    size: tuple[int, int]  # (width, height) of the full picture
    boxes: list[CropBox]
    crops: np.ndarray  # K×H×W×3 uint8 at the model's input size
    whole_image: bool


@dataclass
class ImagePrediction:
    mask: np.ndarray  # H×W uint8 for the full picture
    uncertainty: float | None
    boxes: list[CropBox]
    whole_image: bool
    confidence: np.ndarray | None = None


def _whole(key: Any, image: np.ndarray, size: tuple[int, int], input_size: tuple[int, int]) -> PreparedImage:
    decoded = whole_image_box((image.shape[1], image.shape[0]))
    return PreparedImage(key, size, [whole_image_box(size)], crop(image, decoded, input_size)[None], True)


def prepare_array(key: Any, image: np.ndarray, framing: Framing, input_size: tuple[int, int]) -> PreparedImage:
    """Detect and crop the faces of an in-memory RGB picture."""
    size = (image.shape[1], image.shape[0])
    if framing.mode == WHOLE_IMAGE:
        return _whole(key, image, size, input_size)
    assert framing.detector is not None
    faces = framing.detector.detect(image)
    if not faces:
        return _whole(key, image, size, input_size)
    aspect = input_size[1] / input_size[0]
    boxes = [face_crop_box(face, framing.margin, aspect) for face in faces]
    crops = np.stack([crop(image, box, input_size) for box in boxes])
    return PreparedImage(key, size, boxes, crops, False)


def prepare_file(key: Any, path: str | os.PathLike, framing: Framing, input_size: tuple[int, int]) -> PreparedImage:
    """Decode and frame one image file. Whole-image framing decodes JPEGs at a reduced scale when the model
    input is smaller than the picture (several times cheaper than decoding and then shrinking)."""
    if framing.mode != WHOLE_IMAGE:
        return prepare_array(key, load_rgb(path), framing, input_size)
    width, height = read_size(path)
    factor = max(input_size[0] / height, input_size[1] / width)
    max_side = math.ceil(max(width, height) * factor) if factor < 1.0 else None
    return _whole(key, load_rgb(path, max_side=max_side), (width, height), input_size)


def finish_image(prepared: PreparedImage, faces: list[FacePrediction], method: str = "entropy") -> ImagePrediction:
    """Paste the faces' masks into one picture-sized mask and score the picture's uncertainty."""
    indices = [face.index for face in faces]
    confidences = [face.confidence for face in faces]
    with_confidence = all(c is not None for c in confidences)
    mask, conf = paste_masks(prepared.size, prepared.boxes, indices, confidences if with_confidence else None)
    scores: list[FaceUncertainty] = []
    for box, face in zip(prepared.boxes, faces, strict=True):
        if face.probs is None:
            continue
        out_size = face.index.shape[:2]
        rows, cols = box.inside_image(prepared.size, out_size, UNCERTAINTY_STRIDE)
        labels = face.index[::UNCERTAINTY_STRIDE, ::UNCERTAINTY_STRIDE]
        sx, sy = box.scale(out_size)
        area = UNCERTAINTY_STRIDE * UNCERTAINTY_STRIDE / (sx * sy)
        scores.append(face_uncertainty(face.probs, labels, rows[:, None] & cols[None, :], area, method))
    return ImagePrediction(mask, image_uncertainty(scores), list(prepared.boxes), prepared.whole_image, conf)


def predict_image(image: np.ndarray, predictor: Predictor, framing: Framing | None = None,
                  method: str = "entropy") -> ImagePrediction:
    """The full-picture mask of one in-memory RGB picture (synchronous: for one image, not a folder)."""
    prepared = prepare_array(None, image, framing or Framing(), predictor.input_size)
    return finish_image(prepared, predictor.predict(prepared.crops), method)


# --- many images -----------------------------------------------------------------------------------------------

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

    `on_result(key, ImagePrediction)` and `on_error(key, reason)` are called as images complete, one image per call,
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
                return _Failed(key, error.reason)
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
                on_error(item.key, item.reason)
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


# --- a project -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PrelabelProgress:
    done: int
    total: int
    failed: int
    images_per_second: float
    eta_seconds: float | None
    elapsed: float

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass
class PrelabelResult:
    state: str  # "done" or "cancelled"
    job_id: int
    model_id: str
    model_path: Path
    provider: str
    mode: str
    total: int = 0
    predicted: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped_current: int = 0
    skipped_checked: int = 0
    skipped_unreadable: int = 0
    whole_image_fallbacks: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    wait_seconds: float = 0.0
    prepared_here: int = 0
    finished_here: int = 0
    helpers_retired: bool = False
    helper_scheduling: str = ""
    notices: list[str] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        done = self.predicted + len(self.failed)
        return done / self.seconds if self.seconds > 0 else 0.0


def _mtime_ns(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _mapping_to(model_classes: tuple[str, ...], model_schema: str, project: LabelSchema) -> np.ndarray | None:
    """Index table from the model's classes to the project's, or None if they are the same."""
    if model_classes == tuple(project.classes):
        return None
    try:
        builtin = get_schema(model_schema)
        if tuple(builtin.classes) == model_classes:
            return builtin.mapping_lut(project.name)
    except KeyError:
        pass
    raise ModelError(f"the model predicts schema {model_schema!r} ({len(model_classes)} classes) but the project "
                     f"uses {project.name!r} ({project.num_classes} classes) and no mapping between them is known; "
                     "choose a model trained for this project's schema")


class PrelabelJob:
    """Predict every image of a project that needs it. See the module docstring.

    model: a model file, folder, version name or task (see `find_model`); None for the project's active model.
    mode: FACES or WHOLE_IMAGE, remembered for the project; None uses the project's choice, or suggests one from
    a sample of its images. detector: replaces the Haar cascades in FACES mode. image_ids: only these images
    (the studio's "pre-label this image"), with the same rules. redo: predict again the images whose prediction
    is current too (human-checked images are still never touched). A prediction made with another mode, margin
    or TTA setting is not current, so changing them predicts again without `redo`.
    """

    kind = JOB_KIND

    def __init__(self, store: ProjectStore, model: str | os.PathLike | None = None, device: str = "auto",
                 tta: bool = False, mode: str | None = None, detector: FaceDetector | None = None,
                 margin: float = DEFAULT_MARGIN, batch_size: int | None = None, threads: int | None = None,
                 readers: int = 1, uncertainty: str = "entropy", task: str | None = None,
                 image_ids: Iterable[int] | None = None, redo: bool = False):
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if uncertainty not in METHODS:
            raise ValueError(f"uncertainty must be one of {', '.join(METHODS)}, got {uncertainty!r}")
        self.store = store
        self.model = model
        self.device = device
        self.tta = tta
        self.mode = mode
        self.detector = detector
        self.margin = margin
        self.batch_size = batch_size
        self.threads = threads
        self.readers = readers
        self.uncertainty = uncertainty
        self.task = task or task_for_schema(store.schema)
        self.image_ids = None if image_ids is None else {int(i) for i in image_ids}
        self.redo = bool(redo)
        self.job_id: int | None = None

    # -- deciding -------------------------------------------------------------------------------------------------

    def _choose_mode(self, records: list[ImageRecord]) -> tuple[str, str | None]:
        if self.mode is not None:
            self.store.set_setting(MODE_SETTING, self.mode)
            return self.mode, None
        saved = self.store.get_setting(MODE_SETTING)
        if saved in MODES:
            return saved, None
        detector = self.detector or HaarFaceDetector()
        step = max(1, len(records) // SUGGESTION_SAMPLE)
        sample = [r for r in records[::step] if r.error is None][:SUGGESTION_SAMPLE]

        seen = [0]

        def pictures() -> Iterator[np.ndarray]:
            for rec in sample:
                with contextlib.suppress(ImageLoadError):
                    picture = load_rgb(self.store.root / rec.relpath, max_side=SUGGESTION_SIDE)
                    seen[0] += 1
                    yield picture

        mode, reason = suggest_mode(pictures(), detector)
        if not seen[0]:  # a guess from no picture is not a choice to remember
            return mode, f"mode {mode.replace('_', ' ')} for this run: {reason}"
        self.store.set_setting(MODE_SETTING, mode)
        return mode, f"mode {mode.replace('_', ' ')} chosen for this project: {reason}"

    def is_current(self, rec: ImageRecord, model_id: str, settings: str | None = None) -> bool:
        """Predicted by this model with these `prediction_settings` from the file as it is now (the mask is newer
        than the picture). A prediction stored without its settings (an older project) counts as made with them."""
        if rec.model_version != model_id or rec.status != "predicted":
            return False
        if settings is not None and rec.predicted_with is not None and rec.predicted_with != settings:
            return False
        mask_time = _mtime_ns(self.store.mask_path("predicted", rec.id))
        image_time = _mtime_ns(self.store.root / rec.relpath)
        return mask_time is not None and image_time is not None and image_time <= mask_time

    def plan(self, model_id: str, result: PrelabelResult | None = None, settings: str | None = None
             ) -> list[ImageRecord]:
        """The images this run must predict, in name order; counts what it skips into `result`."""
        todo = []
        for rec in self.store.images():
            if self.image_ids is not None and rec.id not in self.image_ids:
                continue
            if rec.status in ("corrected", "reviewed"):
                skip = "skipped_checked"
            elif rec.error is not None:
                skip = "skipped_unreadable"
            elif not self.redo and self.is_current(rec, model_id, settings):
                skip = "skipped_current"
            else:
                todo.append(rec)
                continue
            if result is not None:
                setattr(result, skip, getattr(result, skip) + 1)
        return todo

    # -- running --------------------------------------------------------------------------------------------------

    def run(self, progress_callback: Callable[[PrelabelProgress], None] | None = None,
            cancel_event: threading.Event | None = None) -> PrelabelResult:
        store = self.store
        self.job_id = job_id = store.add_job(JOB_KIND, {"model": None if self.model is None else str(self.model),
                                                        "device": self.device, "tta": self.tta, "mode": self.mode})
        store.update_job(job_id, state="running", pid=os.getpid(), message="starting")
        try:
            return self._run_job(job_id, progress_callback, cancel_event)
        except BaseException as error:
            expected = isinstance(error, ModelError | ModelNotFoundError | ProjectError)
            message = str(error) if expected else f"{type(error).__name__}: {error}"
            with contextlib.suppress(Exception):
                store.update_job(job_id, state="failed", message=message)
            raise

    def _run_job(self, job_id: int, progress_callback: Callable[[PrelabelProgress], None] | None,
                 cancel_event: threading.Event | None) -> PrelabelResult:
        store = self.store
        resolved = find_model(store, self.model, self.task)
        predictor = Predictor(resolved.path, device=self.device, threads=self.threads,
                              batch_size=self.batch_size, tta=self.tta, confidence=False, probabilities=True)
        lut = _mapping_to(predictor.info.classes, predictor.info.schema_name, store.schema)
        records = store.images()
        mode, mode_notice = self._choose_mode(records)
        result = PrelabelResult("done", job_id, resolved.model_id, resolved.path, predictor.provider, mode)
        for notice in (predictor.notice, mode_notice):
            if notice:
                result.notices.append(notice)
                store.append_job_log(job_id, notice)
        store.append_job_log(job_id, f"model {resolved.model_id} ({resolved.source}: {resolved.path}); "
                                     f"{predictor.describe()}; mode {mode}")
        settings = prediction_settings(mode, self.tta, self.margin)
        todo = self.plan(resolved.model_id, result, settings)
        result.total = len(todo)
        relpaths = {rec.id: rec.relpath for rec in todo}
        lock = threading.Lock()
        started = time.perf_counter()
        last = {"job_update": 0.0}
        stop = threading.Event()

        def on_result(image_id: int, prediction: ImagePrediction) -> None:
            mask = prediction.mask if lut is None else lut[prediction.mask]
            try:
                store.save_predicted(image_id, mask, resolved.model_id, prediction.uncertainty, settings)
            except (MaskError, ProjectError) as error:
                on_error(image_id, str(error))
                return
            with lock:
                result.predicted += 1
                if prediction.whole_image and mode == FACES:
                    result.whole_image_fallbacks += 1

        def on_error(image_id: int, reason: str) -> None:
            relpath = relpaths.get(image_id, str(image_id))
            with contextlib.suppress(ProjectError):
                store.set_error(image_id, reason)
            store.append_job_log(job_id, f"skipped {relpath}: {reason}")
            with lock:
                result.failed.append((relpath, reason))

        def progress() -> PrelabelProgress:
            with lock:
                done, failed = result.predicted + len(result.failed), len(result.failed)
            elapsed = time.perf_counter() - started
            rate = done / elapsed if elapsed > 0 else 0.0
            eta = (result.total - done) / rate if rate > 0 else None
            return PrelabelProgress(done, result.total, failed, rate, eta, elapsed)

        def report(force: bool = False) -> None:
            snapshot = progress()
            if progress_callback is not None:
                progress_callback(snapshot)
            now = time.perf_counter()
            if force or now - last["job_update"] >= JOB_UPDATE_SECONDS:
                last["job_update"] = now
                store.update_job(job_id, progress=snapshot.fraction,
                                 message=f"{snapshot.done}/{snapshot.total} images, {snapshot.images_per_second:.1f}/s")

        def cancelled() -> bool:
            if stop.is_set() or (cancel_event is not None and cancel_event.is_set()):
                stop.set()
                return True
            job = store.job(job_id)
            if job and job["cancel_requested"]:
                stop.set()
            return stop.is_set()

        framing = Framing(mode, self.detector, self.margin)
        pipeline = PredictionPipeline(predictor, framing, readers=self.readers, uncertainty=self.uncertainty)
        report(force=True)
        stats = pipeline.run(((rec.id, store.root / rec.relpath) for rec in todo), on_result, on_error,
                             cancelled, report, store.release_thread_connection)
        result.seconds = time.perf_counter() - started
        result.model_seconds = stats.model_seconds
        result.wait_seconds = stats.wait_seconds
        result.prepared_here, result.finished_here = stats.prepared_here, stats.finished_here
        result.helper_scheduling, result.helpers_retired = stats.helper_scheduling, stats.helpers_retired
        finished = result.predicted + len(result.failed)
        if finished < result.total and stop.is_set():
            result.state = "cancelled"
        report(force=True)
        summary = (f"{result.predicted} predicted, {len(result.failed)} failed, {result.skipped_current} already "
                   f"current, {result.skipped_checked} corrected/reviewed kept, {result.total - finished} left")
        store.append_job_log(job_id, summary)
        store.update_job(job_id, state=result.state, progress=finished / result.total if result.total else 1.0,
                         message=summary)
        return result
