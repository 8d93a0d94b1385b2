"""The model work the studio starts: pre-labeling (one image or all) and retraining, as Qt-friendly objects.

Pre-labeling runs `PrelabelJob` (all images) or the predictor on one picture in a pool thread. Retraining runs in
its own process through `JobRunner`; its events arrive on a reader thread and are re-emitted here as a queued
signal, so the panel only ever sees them on the GUI thread.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from faceparse.core.face_cache import CachedFaceDetector
from faceparse.core.faces import FACES, HaarFaceDetector
from faceparse.core.framing import Framing, predict_image
from faceparse.core.imageio import load_rgb
from faceparse.core.jobs import JobEvent, JobHandle, JobRunner
from faceparse.core.model_resolver import find_model, task_for_schema
from faceparse.core.predictor import Predictor, choose_providers
from faceparse.core.prelabel import (
    PrelabelJob,
    PrelabelResult,
    choose_mode,
    prediction_settings,
    project_predictor,
    project_tta,
)
from faceparse.core.store import ImageRecord, ProjectError, ProjectStore
from PySide6.QtCore import QObject, Qt, Signal

DEVICES = {"auto": "Auto (GPU if available)", "cpu": "CPU", "cuda": "GPU (CUDA)"}


def device_description(device: str) -> str:
    """Where inference will run for a device choice, as ONNX Runtime reports it on this machine. A CUDA provider
    that is built in may still fail to start (a missing library): until a run has shown it working, it is named
    as what is asked for, and the first run replaces this with the provider that ran."""
    providers, notice = choose_providers(device)
    where = "GPU (CUDA), once a run confirms it" if providers[0].startswith("CUDA") else "CPU"
    return where + (f" — {notice}" if notice else "")


class PredictorCache:
    """Loaded predictors by (model file, device, TTA): building an inference session costs more than a picture.
    Two are kept, since a masked-faces project pre-labels with a pair of models."""

    KEEP = 2

    def __init__(self):
        self._lock = threading.Lock()
        self._predictors: OrderedDict[tuple, Predictor] = OrderedDict()
        self.last_used: Predictor | None = None
        """The predictor handed out last: where the last single-image prediction really ran, and why not on the
        device asked for (its `notice`)."""

    def get(self, path: Path, device: str, tta: bool = False) -> Predictor:
        key = (str(path), path.stat().st_mtime_ns, device, tta)
        with self._lock:
            predictor = self._predictors.pop(key, None)
            if predictor is None:
                predictor = Predictor(path, device=device, tta=tta, confidence=False, probabilities=True)
            self._predictors[key] = predictor
            self.last_used = predictor
            while len(self._predictors) > self.KEEP:
                self._predictors.popitem(last=False)
            return predictor


def prelabel_image(store: ProjectStore, image_id: int, device: str, cache: PredictorCache) -> ImageRecord:
    """Predict one image with the project's model, framing and TTA choice (its classes mapped to the project's
    schema as Pre-label All does) and store it as the prediction, even beside a correction; returns the record."""
    record = store.get(image_id)
    if record is None:
        raise ProjectError(f"image {image_id} is no longer in the project")
    task = task_for_schema(store.schema)
    tta = project_tta(store)
    predictor, resolved, lut = project_predictor(store, find_model(store, None, task), task,
                                                 lambda path: cache.get(path, device, tta))
    mode, _ = choose_mode(store)
    framing = Framing(mode, CachedFaceDetector(store, HaarFaceDetector())) if mode == FACES else Framing(mode)
    prediction = predict_image(load_rgb(store.root / record.relpath), predictor, framing, key=image_id)
    mask = prediction.mask if lut is None else lut[prediction.mask]
    store.save_predicted(image_id, mask, resolved.model_id, prediction.uncertainty, prediction_settings(mode, tta))
    return store.get(image_id)  # type: ignore[return-value]


def prelabel_all(store: ProjectStore, device: str, report, cancel: threading.Event, redo: bool = False
                 ) -> PrelabelResult:
    """Scan first, as the command line does: a photo replaced since the project was opened is predicted again.
    `redo` predicts again the current and imported predictions too (`prelabel --redo`)."""
    store.scan()
    return PrelabelJob(store, device=device, redo=redo).run(report, cancel)


class RetrainBridge(QObject):
    """Starts a retrain process and delivers its JobEvents on the GUI thread."""

    event = Signal(object)  # JobEvent

    def __init__(self, project_root: Path, parent: QObject | None = None):
        super().__init__(parent)
        self.project_root = project_root
        self.handle: JobHandle | None = None
        self.finished = False
        self._runner: JobRunner | None = None
        self._relay = _Relay()
        self._relay.event.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    @property
    def running(self) -> bool:
        """A job was started and has not sent its final event (its process may still be exiting after that)."""
        return self.handle is not None and not self.finished and self.handle.running

    def start(self, config: dict) -> int:
        """Start the job; raises JobConflict if one is running, ConfigError/ProjectError for bad options."""
        if self._runner is None:
            self._runner = JobRunner(self.project_root)
        self.finished = False
        self.handle = self._runner.start_retrain(config, on_event=self._relay.event.emit)
        return self.handle.job_id

    def _deliver(self, event: JobEvent) -> None:
        if event.final:
            self.finished = True
        self.event.emit(event)

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()

    def stop(self, pump: Callable[[], None], timeout_s: float = 30.0) -> bool:
        """Cancel a running job and wait for its process to end, calling `pump` (the GUI's event processing)
        every quarter second so the window keeps drawing; a job that ignores the cancel is killed on the way
        (see `JobHandle.wait`). True when it ended within `timeout_s`."""
        if not self.running:
            return True
        self.cancel()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.handle.wait(timeout=0)  # type: ignore[union-attr]
                return True
            except TimeoutError:
                pump()
        return False

    def close(self) -> None:
        if self.running:
            self.cancel()
            try:
                self.handle.wait(timeout=30)  # type: ignore[union-attr]
            except TimeoutError:
                pass
        if self._runner is not None:
            self._runner.close()
            self._runner = None


class _Relay(QObject):
    event = Signal(object)
