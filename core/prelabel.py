"""Pre-labeling: every image of a project gets a predicted mask before the annotator touches it.

`PrelabelJob` drives the prediction pipeline (core/prediction_pipeline.py) over a project: it decides what needs a
prediction (nothing corrected or reviewed, nothing already predicted by this model with these settings from this
file, no prediction brought in by an import), stores each result atomically as it completes, records bad images
without stopping, and can be cancelled and resumed.

The job is a plain object: the GUI calls `run` in a worker thread, the command line in its main thread. Progress
callbacks come from that thread or from the pipeline's writer thread, so they must be thread-safe.

One run at a time per project: a run holds an OS lock on `.faceparse/jobs/prelabel.lock` (freed by the OS when
its process ends, however it ends), and a second run is refused with `PrelabelBusy` before it writes anything.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from faceparse.core.atomic import folder_write_problem
from faceparse.core.face_and_mask import FaceAndMaskPredictor, wants_face_and_mask
from faceparse.core.face_cache import CachedFaceDetector
from faceparse.core.faces import DEFAULT_MARGIN, FACES, MODES, FaceDetector, HaarFaceDetector, suggest_mode
from faceparse.core.framing import Framing, ImagePrediction
from faceparse.core.imageio import ImageLoadError, load_rgb
from faceparse.core.jobs import ACTIVE_STATES, ProcessLock, jobs_dir, reap_stale_jobs
from faceparse.core.model_resolver import (
    ModelNotFoundError,
    ResolvedModel,
    find_model,
    models_command,
    starter_model_path,
    task_for_schema,
)
from faceparse.core.prediction_pipeline import PipelineStats, PredictionPipeline
from faceparse.core.predictor import ModelError, Predictor, read_model_info
from faceparse.core.schemas import LabelSchema, SchemaError, get_schema, reverse_mapping_lut
from faceparse.core.store import ImageRecord, MaskError, ProjectError, ProjectStore
from faceparse.core.uncertainty import METHODS

MODE_SETTING = "prelabel.mode"
TTA_SETTING = "prelabel.tta"
JOB_KIND = "prelabel"
SUGGESTION_SAMPLE = 8
SUGGESTION_SIDE = 1024
JOB_UPDATE_SECONDS = 1.0
SUGGESTED_MODE = "auto"
SAVE_FAILURES_TO_STOP = 5
"""Masks that could not be saved one after another before a run stops: the masks folder or disk is failing."""
IMPORTED_PREFIX = "import:"
"""How an imported prediction's model is recorded (`import:<format>`, core/importer.py)."""
PRELABEL_LOCK = "prelabel.lock"


def project_tta(store: ProjectStore) -> bool:
    """Whether the project's pre-labels use flip test-time augmentation (off until chosen)."""
    return bool(store.get_setting(TTA_SETTING, False))


def prediction_settings(mode: str, tta: bool, margin: float = DEFAULT_MARGIN) -> str:
    """How a prediction was made, in words stored with it: a run with other settings predicts it again."""
    framing = f"faces, margin {margin:g}" if mode == FACES else mode.replace("_", " ")
    return f"{framing}, flip TTA" if tta else framing


def save_failure_reason(error: Exception, target: Path) -> str:
    """Why a mask was not saved, naming the file it was meant for (never the temporary one it was written to
    first) and the system's reason without its error number."""
    if isinstance(error, OSError) and error.strerror:
        return f"cannot save its mask {target}: {error.strerror}"
    return str(error)


def spread_sample(items: list, count: int) -> list:
    """`count` items spread evenly from the first to the last (all of them when there are no more): a folder's
    photos sorted by name often come in runs, such as a few portraits after many aligned crops."""
    if len(items) <= count:
        return list(items)
    if count <= 1:
        return list(items[:count])
    picks = sorted({round(i * (len(items) - 1) / (count - 1)) for i in range(count)})
    return [items[i] for i in picks]


def choose_mode(store: ProjectStore, records: list[ImageRecord] | None = None, mode: str | None = None,
                detector: FaceDetector | None = None) -> tuple[str, str | None]:
    """The framing mode of the project's pre-labels and a notice when it was just decided: `mode` if given (and
    remembered), else the project's choice, else one suggested from a sample of `records` (all images if None)
    and remembered."""
    if mode is not None:
        store.set_setting(MODE_SETTING, mode)
        return mode, None
    saved = store.get_setting(MODE_SETTING)
    if saved in MODES:
        return saved, None
    detector = detector or HaarFaceDetector()
    records = store.images() if records is None else records
    sample = spread_sample([r for r in records if r.error is None], SUGGESTION_SAMPLE)

    seen = [0]

    def pictures() -> Iterator[np.ndarray]:
        for rec in sample:
            with contextlib.suppress(ImageLoadError):
                picture = load_rgb(store.root / rec.relpath, max_side=SUGGESTION_SIDE)
                seen[0] += 1
                yield picture

    mode, reason = suggest_mode(pictures(), detector)
    if not seen[0]:  # a guess from no picture is not a choice to remember
        return mode, f"mode {mode.replace('_', ' ')} for this run: {reason}"
    store.set_setting(MODE_SETTING, mode)
    return mode, f"mode {mode.replace('_', ' ')} chosen for this project: {reason}"


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
    state: str  # "done", "cancelled" or (carried by PrelabelStopped) "failed"
    job_id: int
    model_id: str
    model_path: Path
    provider: str
    mode: str
    tta: bool = False
    total: int = 0
    predicted: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped_current: int = 0
    skipped_imported: int = 0
    skipped_checked: int = 0
    skipped_unreadable: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    """The photos skipped because an earlier read of them failed, with why (relative path, reason)."""
    whole_image_fallbacks: int = 0
    seconds: float = 0.0
    pipeline: PipelineStats = field(default_factory=PipelineStats)
    """Where the time went inside the run: model, waiting, work the model's thread did for its helpers."""
    notices: list[str] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        done = self.predicted + len(self.failed)
        return done / self.seconds if self.seconds > 0 else 0.0


class PrelabelStopped(ProjectError):
    """The run gave up part way (masks kept failing to save); `result` counts what it did before that, since
    the masks it saved are kept and the next run goes on from them."""

    def __init__(self, message: str, result: PrelabelResult):
        super().__init__(message)
        self.result = result


class PrelabelBusy(ProjectError):
    """Another pre-labeling run is going on in the project; this one was refused before it wrote anything."""


def prelabel_lock(store: ProjectStore) -> ProcessLock:
    """The lock a pre-labeling run holds: two runs at once would predict the same images twice over and each
    replace the other's masks."""
    return ProcessLock(jobs_dir(store) / PRELABEL_LOCK)


def running_prelabel_job(store: ProjectStore) -> dict[str, Any] | None:
    """The newest pre-labeling job recorded as going on (after marking those whose process is gone as failed)."""
    reap_stale_jobs(store)
    return next((job for job in store.jobs(JOB_KIND) if job["state"] in ACTIVE_STATES), None)


def busy_message(store: ProjectStore) -> str:
    """Why a run was refused, naming the run that holds the project and how to follow or stop it."""
    folder = shlex.quote(str(store.root))
    job = running_prelabel_job(store)
    if job is None:
        return (f"another pre-labeling run is starting on {store.root}; wait for it to finish "
                f"(faceparse jobs {folder} lists the project's jobs)")
    return (f"a pre-labeling run is already going on in {store.root} (job {job['id']}, "
            f"{100 * (job['progress'] or 0):.0f}% done); wait for it to finish, follow it with: faceparse jobs "
            f"{folder}, or stop it with: faceparse jobs {folder} --cancel {job['id']}")


def class_mapping(model_classes: tuple[str, ...], model_schema: str, project: LabelSchema) -> np.ndarray | None:
    """Index table from the model's classes to the project's, or None if they are the same.

    The mapping the model's built-in schema declares to the project's schema comes first; else the project
    schema's own mapping to the model's schema, read backwards (`reverse_mapping_lut`), since that is the only
    mapping a user's schema file can declare."""
    if model_classes == tuple(project.classes):
        return None
    try:
        builtin = get_schema(model_schema)
    except KeyError:
        builtin = None
    if builtin is not None and tuple(builtin.classes) == model_classes and project.name in builtin.mappings:
        return builtin.mapping_lut(project.name)
    if model_schema in project.mappings and (builtin is None or tuple(builtin.classes) == model_classes):
        try:
            return reverse_mapping_lut(project, model_schema, model_classes)
        except SchemaError as error:
            raise ModelError(f"the project cannot be labeled by a model of schema {model_schema!r}: {error}"
                             ) from None
    raise ModelError(f"the model predicts schema {model_schema!r} ({len(model_classes)} classes) but the project "
                     f"uses {project.name!r} ({project.num_classes} classes) and no mapping between them is known; "
                     "choose a model trained for this project's schema")


def _open_naming_the_remedy(store: ProjectStore, resolved: ResolvedModel, task: str,
                            open_model: Callable[[Path], Predictor]) -> Predictor:
    try:
        return open_model(resolved.path)
    except ModelError as error:
        if resolved.source != "project":
            raise
        raise ModelError(f"{error}; activating the version again exports it anew from its checkpoint "
                         f"({models_command(store, task, 'activate', resolved.model_id)})") from None


def project_predictor(store: ProjectStore, resolved: ResolvedModel, task: str,
                      open_model: Callable[[Path], Predictor]) -> tuple[Any, ResolvedModel, np.ndarray | None]:
    """What pre-labels `store` with the `resolved` model: the predictor, the model (its id is what predictions
    are stored under) and the table from its classes to the project's (None when they are the same).

    A masked-faces project on the starter parser gets a face-mask segmenter beside it (see `face_and_mask`): the
    project's active mask version, else the starter one. The pair's id names both, so a prediction by the parser
    alone, or with another segmenter, is not current.
    `open_model(path)` loads one ONNX file (the caller chooses device, threads and TTA, or reuses a loaded one).
    A project version's ONNX file that cannot be read is named with the way out: activating the version again
    exports it anew from its checkpoint."""
    parser = _open_naming_the_remedy(store, resolved, task, open_model)
    lut = class_mapping(parser.info.classes, parser.info.schema_name, store.schema)
    if not (resolved.source == "starter" and task == "parser" and wants_face_and_mask(store.schema)):
        return parser, resolved, lut
    try:
        mask = find_model(store, None, "mask")
    except ModelNotFoundError as error:
        if store.active_model("mask") is not None:
            raise ModelError(str(error)) from None
        return parser, resolved, lut
    both = FaceAndMaskPredictor(parser, _open_naming_the_remedy(store, mask, "mask", open_model), store.schema, lut)
    return both, replace(resolved, model_id=f"{resolved.model_id}+{mask.model_id}"), None


def starter_problem(schema: LabelSchema, task: str) -> str | None:
    """Why the shipped starter model of `task` cannot pre-label a project of `schema` (it is missing or unreadable,
    or its classes are not the project's and no mapping between them is declared), or None when it can."""
    try:
        info = read_model_info(starter_model_path(task))
        class_mapping(info.classes, info.schema_name, schema)
    except ModelError as error:
        return str(error)
    return None


def describe_starter(schema: LabelSchema, task: str, active_mask: str | None = None) -> str | None:
    """What pre-labels a project of `schema` while no version of `task` is active, in words; None when the starter
    model cannot (`starter_problem`), so that nothing claims it does. `active_mask`: the project's active mask
    version, which a masked-faces project pairs with the starter parser."""
    if starter_problem(schema, task) is not None:
        return None
    if task == "parser" and wants_face_and_mask(schema):
        if active_mask is not None:
            return f"the starter parser model, with the project's face-mask model {active_mask} for face_mask"
        if starter_model_path("mask").is_file():
            return "the starter parser model, with the starter face-mask segmenter for face_mask"
    return f"the starter {task} model"


def is_imported(rec: ImageRecord) -> bool:
    """Whether the image's prediction was brought in by an import rather than made by a model. A scan that finds
    the photo changed forgets where its prediction came from, so it is then predicted again."""
    return rec.status == "predicted" and (rec.model_version or "").startswith(IMPORTED_PREFIX)


class _Run:
    """One run's counts and the callbacks the prediction pipeline calls. They come from the model's thread and
    from the writer's, so the counts change only under the lock."""

    def __init__(self, store: ProjectStore, job_id: int, result: PrelabelResult, lut: np.ndarray | None,
                 settings: str, relpaths: dict[int, str],
                 progress_callback: Callable[[PrelabelProgress], None] | None, cancel_event: threading.Event | None,
                 keep_imported: bool = True):
        self.store = store
        self.keep_imported = keep_imported
        self.job_id = job_id
        self.result = result
        self.lut = lut
        self.settings = settings
        self.relpaths = relpaths
        self.progress_callback = progress_callback
        self.cancel_event = cancel_event
        self.lock = threading.Lock()
        self.started = time.perf_counter()
        self.last_job_update = 0.0
        self.save_failures_in_a_row = 0
        self.stop = threading.Event()

    def on_result(self, image_id: int, prediction: ImagePrediction) -> None:
        result = self.result
        mask = prediction.mask if self.lut is None else self.lut[prediction.mask]
        if self.keep_imported and self._imported_meanwhile(image_id):
            with self.lock:
                result.skipped_imported += 1
            return
        try:
            self.store.save_predicted(image_id, mask, result.model_id, prediction.uncertainty, self.settings)
        except MaskError as error:  # about this photo and its mask, not the disk: no reason to stop the run
            self.on_error(image_id, str(error), lasting=False)
            return
        except (ProjectError, OSError) as error:
            self.on_save_failure(image_id, error)
            return
        with self.lock:
            self.save_failures_in_a_row = 0
            result.predicted += 1
            if prediction.whole_image and result.mode == FACES:
                result.whole_image_fallbacks += 1

    def _imported_meanwhile(self, image_id: int) -> bool:
        """A prediction another process imported after this run made its plan is kept, as the plan would have
        kept it (a person's mask is kept by `save_predicted` itself)."""
        try:
            rec = self.store.get(image_id)
        except (ProjectError, sqlite3.Error):
            return False
        return rec is not None and is_imported(rec) and self.store.mask_path("predicted", image_id).is_file()

    def on_save_failure(self, image_id: int, error: Exception) -> None:
        """Counted against this run, not the photo; stops the run when saving keeps failing."""
        reason = save_failure_reason(error, self.store.mask_path("predicted", image_id))
        self.on_error(image_id, reason, lasting=False)
        with self.lock:
            self.save_failures_in_a_row += 1
            failing = self.save_failures_in_a_row >= SAVE_FAILURES_TO_STOP
        if failing:
            raise PrelabelStopped(f"stopped: {SAVE_FAILURES_TO_STOP} masks in a row could not be saved "
                                  f"(last: {reason})", self.result)

    def on_error(self, image_id: int, reason: str, lasting: bool = True) -> None:
        """Count and log a failure; only one that lies in the file itself is remembered against the image
        (so later runs skip it until the file changes). A failure to save, or to read the file just now, is
        tried again by the next run."""
        relpath = self.relpaths.get(image_id, str(image_id))
        if lasting:
            with contextlib.suppress(ProjectError):
                self.store.set_error(image_id, reason)
        self.store.append_job_log(self.job_id, f"skipped {relpath}: {reason}")
        with self.lock:
            self.result.failed.append((relpath, reason))

    def progress(self) -> PrelabelProgress:
        result = self.result
        with self.lock:
            done, failed = result.predicted + len(result.failed), len(result.failed)
        elapsed = time.perf_counter() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (result.total - done) / rate if rate > 0 else None
        return PrelabelProgress(done, result.total, failed, rate, eta, elapsed)

    def report(self, force: bool = False) -> None:
        """Every report reaches the callback; the job's row is written at most once a second unless `force`d."""
        snapshot = self.progress()
        if self.progress_callback is not None:
            self.progress_callback(snapshot)
        now = time.perf_counter()
        if force or now - self.last_job_update >= JOB_UPDATE_SECONDS:
            self.last_job_update = now
            self.store.update_job(self.job_id, progress=snapshot.fraction,
                                  message=f"{snapshot.done}/{snapshot.total} images, "
                                          f"{snapshot.images_per_second:.1f}/s")

    def cancelled(self) -> bool:
        """Whether to stop, asked through the event or through the job's row in the store (`request_cancel`).
        Once asked, the answer stays yes."""
        if self.stop.is_set() or (self.cancel_event is not None and self.cancel_event.is_set()):
            self.stop.set()
            return True
        job = self.store.job(self.job_id)
        if job and job["cancel_requested"]:
            self.stop.set()
        return self.stop.is_set()

    def mark_stopped(self) -> None:
        """A run given up part way has failed; `PrelabelStopped` carries this result, with its time so far."""
        self.result.state = "failed"
        self.result.seconds = time.perf_counter() - self.started

    def finish(self, stats: PipelineStats) -> PrelabelResult:
        """The result, with the run's summary in the job's log and row; a run stopped before the end is cancelled."""
        result = self.result
        result.seconds = time.perf_counter() - self.started
        result.pipeline = stats
        finished = result.predicted + len(result.failed)
        if finished < result.total and self.stop.is_set():
            result.state = "cancelled"
        self.report(force=True)
        summary = (f"{result.predicted} predicted, {len(result.failed)} failed, {result.skipped_current} already "
                   f"current, {result.skipped_imported} imported kept, {result.skipped_checked} corrected/reviewed "
                   f"kept, {result.total - finished} left")
        self.store.append_job_log(self.job_id, summary)
        self.store.update_job(self.job_id, state=result.state,
                              progress=finished / result.total if result.total else 1.0, message=summary)
        return result


class PrelabelJob:
    """Predict every image of a project that needs it. See the module docstring.

    model: a model file, folder, version name or task (see `find_model`); None for the project's active model.
    tta: flip test-time augmentation, remembered for the project; None uses the project's choice (off until chosen).
    mode: FACES or WHOLE_IMAGE, remembered for the project; None uses the project's choice, or suggests one from
    a sample of its images; SUGGESTED_MODE forgets the project's choice and suggests one. Choices are remembered
    only once the model has loaded, so a run that cannot start changes nothing. detector: replaces the Haar
    cascades in FACES mode; the faces it finds are remembered per photo when it has a `signature()` (see
    `face_cache`). image_ids: only these images (the studio's "pre-label this image"), with the same rules.
    redo: predict again the images whose prediction is current too, and those whose prediction was imported
    (`import --as predicted`: labels from elsewhere, possibly better than any model's and kept nowhere else, so a
    run without `redo` keeps them); human-checked images are still never touched.
    A prediction made with another mode, margin or TTA setting is not current, so changing them predicts again
    without `redo`.
    """

    kind = JOB_KIND

    def __init__(self, store: ProjectStore, model: str | os.PathLike | None = None, device: str = "auto",
                 tta: bool | None = None, mode: str | None = None, detector: FaceDetector | None = None,
                 margin: float = DEFAULT_MARGIN, batch_size: int | None = None, threads: int | None = None,
                 readers: int = 1, uncertainty: str = "entropy", task: str | None = None,
                 image_ids: Iterable[int] | None = None, redo: bool = False, context: bool = True):
        if mode is not None and mode not in (*MODES, SUGGESTED_MODE):
            raise ValueError(f"mode must be one of {', '.join((*MODES, SUGGESTED_MODE))}, got {mode!r}")
        if uncertainty not in METHODS:
            raise ValueError(f"uncertainty must be one of {', '.join(METHODS)}, got {uncertainty!r}")
        self.store = store
        self.model = model
        self.device = device
        self.tta = tta
        self.mode = mode
        self.detector = detector
        self.margin = margin
        self.context = context
        self.batch_size = batch_size
        self.threads = threads
        self.readers = readers
        self.uncertainty = uncertainty
        self.task = task or task_for_schema(store.schema)
        self.image_ids = None if image_ids is None else {int(i) for i in image_ids}
        self.redo = bool(redo)
        self.job_id: int | None = None
        self._lock: ProcessLock | None = None

    # -- deciding -------------------------------------------------------------------------------------------------

    def _choose_mode(self, records: list[ImageRecord]) -> tuple[str, str | None]:
        if self.mode == SUGGESTED_MODE:
            self.store.set_setting(MODE_SETTING, None)
            return choose_mode(self.store, records, None, self.detector)
        return choose_mode(self.store, records, self.mode, self.detector)

    def is_current(self, rec: ImageRecord, model_id: str, settings: str | None = None) -> bool:
        """Predicted by this model with these `prediction_settings` from the file as it is now. A scan that finds a
        file changed forgets which model predicted it, so its prediction is never current; timestamps are not
        compared (a photo copied with its old time, or stamped in the future, would fool them). A file whose time
        alone changed is current only once hashing shows the same bytes (`ProjectStore.settle_touched`). A
        prediction stored without its settings (an older project) counts as made with them."""
        if rec.model_version != model_id or rec.status != "predicted" or rec.hash_before is not None:
            return False
        if settings is not None and rec.predicted_with is not None and rec.predicted_with != settings:
            return False
        return self.store.mask_path("predicted", rec.id).is_file()

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
            elif not self.redo and is_imported(rec) and self.store.mask_path("predicted", rec.id).is_file():
                skip = "skipped_imported"
            elif not self.redo and self.is_current(rec, model_id, settings):
                skip = "skipped_current"
            else:
                todo.append(rec)
                continue
            if result is not None:
                setattr(result, skip, getattr(result, skip) + 1)
                if skip == "skipped_unreadable":
                    result.unreadable.append((rec.relpath, rec.error))
        return todo

    # -- running --------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the project's pre-labeling lock (`prelabel_lock`), or raise PrelabelBusy at once, having written
        nothing. `run` takes it; a caller that does work of its own for the run first (the command line's scan)
        takes it around both, and `run` inside it does not take it again."""
        if self._lock is not None:
            yield
            return
        lock = prelabel_lock(self.store)
        if not lock.acquire():
            raise PrelabelBusy(busy_message(self.store))
        self._lock = lock
        try:
            yield
        finally:
            self._lock = None
            lock.release()

    def run(self, progress_callback: Callable[[PrelabelProgress], None] | None = None,
            cancel_event: threading.Event | None = None) -> PrelabelResult:
        """Predict what needs it (see the class docstring); PrelabelBusy while another run holds the project."""
        with self.exclusive():
            return self._run(progress_callback, cancel_event)

    def _run(self, progress_callback: Callable[[PrelabelProgress], None] | None,
             cancel_event: threading.Event | None) -> PrelabelResult:
        store = self.store
        self.job_id = job_id = store.add_job(JOB_KIND, {"model": None if self.model is None else str(self.model),
                                                        "device": self.device, "tta": self.tta, "mode": self.mode})
        store.update_job(job_id, state="running", pid=os.getpid(), message="starting")
        try:
            return self._run_job(job_id, progress_callback, cancel_event)
        except KeyboardInterrupt:
            with contextlib.suppress(Exception):
                store.update_job(job_id, state="cancelled",
                                 message="stopped at once (interrupted); the masks saved before it are kept")
            raise
        except BaseException as error:
            expected = isinstance(error, ModelError | ModelNotFoundError | ProjectError)
            message = str(error) if expected else f"{type(error).__name__}: {error}"
            with contextlib.suppress(Exception):
                store.update_job(job_id, state="failed", message=message)
            raise

    def _framing(self, mode: str) -> Framing:
        """The run's framing; in faces mode the faces are remembered per photo (`face_cache`), so a later run, a
        retrain's snapshot or an evaluation does not search the same photo again."""
        if mode != FACES:
            return Framing(mode, None, self.margin, self.context)
        detector = CachedFaceDetector(self.store, self.detector or HaarFaceDetector())
        return Framing(mode, detector, self.margin, self.context)

    def _open_model(self, path: Path, tta: bool) -> Predictor:
        return Predictor(path, device=self.device, threads=self.threads, batch_size=self.batch_size, tta=tta,
                         confidence=False, probabilities=True)

    def _load_predictor(self) -> tuple[Any, ResolvedModel, np.ndarray | None, bool]:
        """The predictor, its model, its class table and the TTA setting. The TTA choice is remembered only once
        the model has loaded, so a run that cannot start changes nothing."""
        store = self.store
        resolved = find_model(store, self.model, self.task)
        tta = project_tta(store) if self.tta is None else bool(self.tta)
        predictor, resolved, lut = project_predictor(store, resolved, self.task,
                                                     lambda path: self._open_model(path, tta))
        if self.tta is not None:
            store.set_setting(TTA_SETTING, tta)
        return predictor, resolved, lut, tta

    def _refuse_unwritable_masks_folder(self) -> None:
        problem = folder_write_problem(self.store.masks_dir / "predicted", "masks folder")
        if problem is not None:
            raise ProjectError(f"{problem}; nothing was pre-labeled")

    def _new_result(self, job_id: int, predictor: Any, resolved: ResolvedModel, tta: bool) -> PrelabelResult:
        """The result the run fills in, once the mode is chosen; its notices and the model used go to the job's
        log, where a user looking at a past run finds them."""
        store = self.store
        mode, mode_notice = self._choose_mode(store.images())
        result = PrelabelResult("done", job_id, resolved.model_id, resolved.path, predictor.provider, mode, tta)
        for notice in (predictor.notice, mode_notice):
            if notice:
                result.notices.append(notice)
                store.append_job_log(job_id, notice)
        store.append_job_log(job_id, f"model {resolved.model_id} ({resolved.source}: {resolved.path}); "
                                     f"{predictor.describe()}; mode {mode}")
        return result

    def _run_job(self, job_id: int, progress_callback: Callable[[PrelabelProgress], None] | None,
                 cancel_event: threading.Event | None) -> PrelabelResult:
        store = self.store
        self._refuse_unwritable_masks_folder()
        predictor, resolved, lut, tta = self._load_predictor()
        result = self._new_result(job_id, predictor, resolved, tta)
        settings = prediction_settings(result.mode, tta, self.margin)
        store.settle_touched()
        todo = self.plan(resolved.model_id, result, settings)
        result.total = len(todo)
        run = _Run(store, job_id, result, lut, settings, {rec.id: rec.relpath for rec in todo}, progress_callback,
                   cancel_event, keep_imported=not self.redo)
        pipeline = PredictionPipeline(predictor, self._framing(result.mode), readers=self.readers,
                                      uncertainty=self.uncertainty)
        run.report(force=True)
        try:
            stats = pipeline.run(((rec.id, store.root / rec.relpath) for rec in todo), run.on_result, run.on_error,
                                 run.cancelled, run.report, store.release_thread_connection)
        except PrelabelStopped:
            run.mark_stopped()
            raise
        return run.finish(stats)
