"""The models panel: pre-label, retrain with a live curve, and the project's model versions.

Pre-labeling and retraining are core jobs (a pool thread, and a separate process for training); the panel starts
them, shows their progress and result, and can cancel them. A retrain ends by saying what it produced: the new
version's score against the active model on the same validation faces, and whether it was promoted. Versions can
be activated, rolled back or deleted here; the previous model stays active until a better one replaces it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import qtawesome as qta
from faceparse.core.checkpoint_layout import has_checkpoint
from faceparse.core.datasets import TRAINABLE_STATUSES, has_validation_faces
from faceparse.core.faces import FACES, WHOLE_IMAGE
from faceparse.core.jobs import JobConflict, JobEvent
from faceparse.core.model_resolver import task_for_schema
from faceparse.core.prelabel import MODE_SETTING, TTA_SETTING, PrelabelProgress, PrelabelResult, project_tta
from faceparse.core.recipes import ConfigError, TrainConfig, get_recipe
from faceparse.core.store import ProjectError, ProjectStore
from faceparse.core.train_worker import auto_start_size, repredict_outcome
from faceparse.core.uncertainty import uncertainty_words
from faceparse.core.versions import (
    STARTER,
    activate,
    activation_history,
    delete_version,
    list_versions,
    rollback,
    rollback_candidates,
    starter_checkpoint,
)
from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .actions import keep_page_keys
from .combos import shrinkable
from .model_jobs import (
    DEVICES,
    PredictorCache,
    RetrainBridge,
    device_description,
    prelabel_all,
    prelabel_image,
)
from .training_plot import TrainingPlot
from .workers import Task, TaskRunner

INPUT_SIZES = (64, 128, 256, 384, 512)
METRIC_TITLES = {"miou_no_bg": "val. mIoU", "miou": "val. mIoU", "iou": "val. IoU"}
ARRIVALS_EVERY_S = 2.0
"""How often a running pre-label job has the list's rows on screen and the open image read again."""
VERSION_COLUMN, SCORE_COLUMN, CREATED_COLUMN, STATE_COLUMN = range(4)
FRAMINGS = (("Automatic", None), ("Each face", FACES), ("Whole image", WHOLE_IMAGE))
"""The framing modes a project can be pre-labeled in, as the panel names them (None: chosen by the first run)."""


def metric_title(metric: str) -> str:
    """A recipe's metric key as a column header and plot legend can show it."""
    return METRIC_TITLES.get(metric, f"val. {metric}")


def status_label(parent: QWidget, text: str = "") -> QLabel:
    """A label for messages of any length (device notices, errors, results): it wraps, and its width never counts
    towards the panel's, so no message can widen the dock or shift the canvas beside it."""
    label = QLabel(text, parent)
    label.setWordWrap(True)
    policy = label.sizePolicy()
    policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
    label.setSizePolicy(policy)
    return label


class VerticalScrollArea(QScrollArea):
    """Scrolls its contents up and down only. It is as wide as the contents need, so nothing is cut off at the
    right, and as short as a few rows, so the panel never sets the window's minimum height. It takes no focus:
    the keys stay with the canvas, or go to the control tabbed to (which it scrolls into view)."""

    def __init__(self, contents: QWidget, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(contents)
        contents.installEventFilter(self)

    def minimumSizeHint(self) -> QSize:
        base = super().minimumSizeHint()
        width = (self.widget().minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
                 + 2 * self.frameWidth())
        return QSize(max(base.width(), width), base.height())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # the contents' minimum width is this area's
        return super().eventFilter(watched, event)


def version_score(metrics: dict[str, Any] | None, recipe) -> float | None:
    """A version's validation score: what a retrain recorded as `score`, else the recipe's metric of its
    validation metrics (versions saved by other means)."""
    metrics = metrics or {}
    if metrics.get("score") is not None:
        return metrics["score"]
    return recipe.score(metrics.get("val") or metrics)


FINISHED_WORDS = {"done": "Retrain finished.", "cancelled": "Retrain cancelled.", "failed": "Retrain failed."}
VERSIONS_WATCH_MS = 3000
"""How often the panel looks for versions changed by another program."""
USABLE_ROLE = Qt.ItemDataRole.UserRole + 1
ACTIVE_ROLE = Qt.ItemDataRole.UserRole + 2


def _score(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.3f}"


CLICK_KEEPS_CANVAS_FOCUS = Qt.FocusPolicy.TabFocus
"""For buttons, boxes and lists used with the mouse: a click leaves the keys with the canvas (a disabled button
would otherwise hand its focus to the epochs box, and Space would toggle a checkbox); Tab still reaches them."""


def run_summary(result: PrelabelResult) -> str:
    """What an All-images run did, with what it left alone and why, and the first photos it could not predict."""
    state = "Cancelled: " if result.state == "cancelled" else ""
    lines = [f"{state}{result.predicted:,} predicted, {len(result.failed):,} failed, in {result.seconds:.1f} s "
             f"with {result.model_id}"]
    kept = [(result.skipped_current, "already current"), (result.skipped_checked, "corrected or reviewed"),
            (result.skipped_imported, "imported predictions kept (Pre-label All Images Again replaces them)"),
            (result.skipped_unreadable, "unreadable photos")]
    if any(n for n, _ in kept):
        lines.append("Left alone: " + ", ".join(f"{n:,} {what}" for n, what in kept if n))
    for relpath, reason in result.failed[:3]:
        lines.append(f"{relpath}: {reason}")
    if len(result.failed) > 3:
        lines.append(f"… and {len(result.failed) - 3:,} more")
    return "\n".join(lines + list(result.notices))


class ModelsPanel(QWidget):
    predictions_changed = Signal()  # masks were predicted (re-read the list and the open image)
    predictions_arriving = Signal()  # a pre-label run is saving masks (every few seconds: refresh what is on screen)
    image_predicted = Signal(object)  # ImageRecord of a single pre-labeled image
    notice = Signal(str)  # what became of "pre-label this image", for the status bar: the panel may be hidden
    versions_changed = Signal()

    def __init__(self, store: ProjectStore, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("modelsPanel")
        self.store = store
        self.runner = runner
        self._last_arrival = 0.0
        self.task = task_for_schema(store.schema)
        self.recipe = get_recipe(self.task)
        self.predictors = PredictorCache()
        self.prelabel_task: Task | None = None
        self.retrain = RetrainBridge(store.root, self)
        self.retrain.event.connect(self._retrain_event)
        self.events: list[JobEvent] = []
        self.last_result: dict[str, Any] | None = None
        self.extra_options: dict[str, Any] = {}
        self._train_steps = 0
        self.save_edits: Callable[[], dict[int, str]] = dict  # the window's: saves open edits, returns failures
        self.unsaved_name: Callable[[int], str] = lambda image_id: f"image {image_id}"
        self._closed = False
        self._activating = False
        self._read_only: str | None = None
        contents = QWidget(self)
        boxes = QVBoxLayout(contents)
        boxes.setContentsMargins(4, 4, 4, 4)
        boxes.addWidget(self._prelabel_box(contents))
        boxes.addWidget(self._retrain_box(contents), 1)
        boxes.addWidget(self._versions_box(contents))
        self.scroll_area = VerticalScrollArea(contents, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll_area)
        for widget in (self.device, self.framing, self.tta, self.prelabel_one_button, self.prelabel_all_button,
                       self.prelabel_cancel, self.retrain_button, self.retrain_cancel, self.activate_button,
                       self.delete_button, self.rollback_button):
            widget.setFocusPolicy(CLICK_KEEPS_CANVAS_FOCUS)
        self._versions_seen: tuple | None = None
        self.refresh_versions()
        self._versions_watch = QTimer(self)
        self._versions_watch.setInterval(VERSIONS_WATCH_MS)
        self._versions_watch.timeout.connect(self.follow_outside_changes)
        self._versions_watch.start()

    # --- construction ------------------------------------------------------------------------------------------

    def _prelabel_box(self, parent: QWidget) -> QGroupBox:
        box = QGroupBox("Pre-label", parent)
        self.device = QComboBox(box)
        for key, title in DEVICES.items():
            self.device.addItem(title, key)
        shrinkable(self.device)
        self.device_label = status_label(box)
        self.device_label.setObjectName("inferenceDevice")
        self.device.currentIndexChanged.connect(self._device_changed)
        self.tta = QCheckBox("Flip test-time augmentation", box)
        self.tta.setToolTip("Also predict each face mirrored and average the two: slightly better masks, twice the "
                            "time. Images predicted the other way are predicted again by All images.")
        self.tta.setChecked(project_tta(self.store))
        self.tta.toggled.connect(lambda on: self.store.set_setting(TTA_SETTING, bool(on)))
        self.framing = QComboBox(box)
        for title, mode in FRAMINGS:
            self.framing.addItem(title, mode)
        self.framing.setToolTip(
            "Each face: every face found is cut out with a margin around it and parsed on its own (portraits, group "
            "photos). Whole image: each image is one face, as in aligned face crops. Automatic: the first "
            "pre-labeling looks at a sample of the folder and chooses. Images predicted the other way are "
            "predicted again by All images.")
        shrinkable(self.framing)
        self.show_framing()
        self.framing.activated.connect(self._framing_chosen)
        self.prelabel_one_button = QPushButton(qta.icon("fa5s.magic"), "This image", box)
        self.prelabel_all_button = QPushButton(qta.icon("fa5s.layer-group"), "All images", box)
        self.prelabel_cancel = QPushButton(qta.icon("fa5s.stop"), "", box)
        self.prelabel_cancel.setToolTip("Cancel pre-labeling (what is done so far is kept)")
        self.prelabel_cancel.setEnabled(False)
        self.prelabel_progress = QProgressBar(box)
        self.prelabel_status = status_label(box)
        self.prelabel_all_button.clicked.connect(self.start_prelabel_all)
        self.prelabel_cancel.clicked.connect(self.cancel_prelabel)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Device", self.device)
        form.addRow("Runs on", self.device_label)
        form.addRow("Framing", self.framing)
        form.addRow(self.tta)
        form.addRow(_row(self.prelabel_one_button, self.prelabel_all_button))
        form.addRow(_row(self.prelabel_progress, self.prelabel_cancel, stretch_first=True))
        form.addRow(self.prelabel_status)
        self._device_changed()
        return box

    def _retrain_box(self, parent: QWidget) -> QGroupBox:
        box = QGroupBox(f"Retrain the {self.task} model", parent)
        self.epochs = QSpinBox(box)
        keep_page_keys(self.epochs)
        self.epochs.setRange(1, 500)
        self.epochs.setValue(TrainConfig.for_task(self.task).epochs)
        self.input_size = QComboBox(box)
        self.input_size.addItem("Automatic", None)  # named by _show_automatic_size
        for size in sorted({*INPUT_SIZES, self.recipe.input_size}):
            self.input_size.addItem(f"{size} px", size)
        self.input_size.setCurrentIndex(0)
        self.input_size.currentIndexChanged.connect(self._caution_about_size)
        shrinkable(self.input_size)
        self.input_size.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.retrain_button = QPushButton(qta.icon("fa5s.sync-alt"), "Retrain", box)
        self.retrain_button.setObjectName("retrainButton")
        self.retrain_cancel = QPushButton(qta.icon("fa5s.stop"), "Cancel", box)
        self.retrain_cancel.setEnabled(False)
        self.retrain_button.clicked.connect(self.start_retrain)
        self.retrain_cancel.clicked.connect(self.cancel_retrain)
        self.retrain_progress = QProgressBar(box)
        self.retrain_phase = status_label(box, "Fine-tunes on the corrected images in a separate process.")
        self.plot = TrainingPlot(box)
        self.plot.clear_data(metric_title(self.recipe.primary_metric))
        self.retrain_result = status_label(box)
        self.retrain_result.setObjectName("retrainResult")
        self.retrain_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        options = QFormLayout()
        options.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        options.addRow("Epochs", self.epochs)
        options.addRow("Input size", self.input_size)
        layout = QVBoxLayout(box)
        layout.addLayout(options)
        layout.addLayout(_row(self.retrain_button, self.retrain_cancel, stretch_first=True))
        layout.addWidget(self.retrain_progress)
        layout.addWidget(self.retrain_phase)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.retrain_result)
        return box

    def _versions_box(self, parent: QWidget) -> QGroupBox:
        box = QGroupBox("Model versions", parent)
        self.versions = self._versions_table(box)
        self.activate_button = QPushButton(qta.icon("fa5s.check-circle"), "Activate", box)
        self.delete_button = QPushButton(qta.icon("fa5s.trash-alt"), "Delete", box)
        self.delete_button.setObjectName("deleteVersion")
        self.rollback_button = QPushButton(qta.icon("fa5s.history"), "Roll back", box)
        self.activate_button.clicked.connect(self.activate_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.versions.currentItemChanged.connect(lambda *_: self._update_version_buttons())
        self.rollback_button.clicked.connect(self.roll_back)
        buttons = QGridLayout()  # three side by side would widen the narrowest dock
        buttons.addWidget(self.activate_button, 0, 0)
        buttons.addWidget(self.rollback_button, 0, 1)
        buttons.addWidget(self.delete_button, 1, 0)
        layout = QVBoxLayout(box)
        layout.addWidget(self.versions)
        layout.addLayout(buttons)
        return box

    def _versions_table(self, parent: QWidget) -> QTreeWidget:
        """Version, score and state keep their width and are shown first; the creation time, shown last, takes
        what room is left (elided, whole in its tooltip). In a narrow dock the state stays in view rather than
        behind a horizontal scroll bar."""
        table = QTreeWidget(parent)
        table.setObjectName("modelVersions")
        table.setHeaderLabels(["Version", metric_title(self.recipe.primary_metric), "Created", "State"])
        table.headerItem().setToolTip(SCORE_COLUMN, f"{self.recipe.primary_metric} on the validation faces")
        table.setRootIsDecorated(False)
        table.setMaximumHeight(150)
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = table.header()
        header.moveSection(header.visualIndex(STATE_COLUMN), header.visualIndex(CREATED_COLUMN))
        header.setStretchLastSection(True)
        header.setMinimumSectionSize(24)
        for column in (VERSION_COLUMN, SCORE_COLUMN, STATE_COLUMN):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        return table

    # --- pre-labeling -----------------------------------------------------------------------------------------

    @property
    def device_choice(self) -> str:
        return self.device.currentData()

    def _device_changed(self) -> None:
        self._show_device(device_description(self.device_choice))

    def _show_device(self, text: str) -> None:
        self.device_label.setText(text)
        self.device_label.setToolTip(text)

    def show_framing(self) -> None:
        """Show the project's framing mode; a pre-labeling run decides it when it was left automatic."""
        self.framing.setCurrentIndex(max(0, self.framing.findData(self.store.get_setting(MODE_SETTING))))

    def _framing_chosen(self) -> None:
        mode = self.framing.currentData()
        if mode == self.store.get_setting(MODE_SETTING):
            return
        self.store.set_setting(MODE_SETTING, mode)
        self.prelabel_status.setText(
            "The next pre-labeling chooses the framing from a sample of the folder." if mode is None else
            f"Framing: {self.framing.currentText().lower()}. All images predicts again the images framed the "
            "other way; corrected and reviewed masks are kept.")

    def set_read_only(self, reason: str) -> None:
        """A project that cannot be written: its models are listed, but nothing that writes (pre-labeling,
        retraining, switching versions) is offered, and the panel says why."""
        self._read_only = reason
        for widget in (self.framing, self.tta, self.prelabel_one_button, self.prelabel_all_button, self.epochs,
                       self.input_size, self.retrain_button):
            widget.setEnabled(False)
        self.prelabel_status.setText(f"Not available: {reason}")
        self.retrain_phase.setText(f"Not available: {reason}")
        self.refresh_versions()

    def _prelabel_running(self, running: bool, cancellable: bool = True) -> None:
        idle = not running and self._read_only is None
        self.framing.setEnabled(idle)
        self.prelabel_one_button.setEnabled(idle)
        self.prelabel_all_button.setEnabled(idle)
        self.prelabel_cancel.setEnabled(running and cancellable)

    @property
    def prelabelling_all(self) -> bool:
        """Whether a run over all images is under way (the one pre-labeling job that can be cancelled)."""
        return self.prelabel_task is not None and self.prelabel_cancel.isEnabled()

    def start_prelabel_image(self, image_id: int | None) -> None:
        if self._read_only is not None:
            self.notice.emit(self._read_only)
            return
        if self.prelabel_task is not None:
            self.notice.emit("A pre-labeling job is running (see the Models panel); pre-label this image when it "
                             "has finished")
            return
        if image_id is None:
            self.prelabel_status.setText("No image is open. An image whose mask cannot be read is predicted again "
                                         "by All images.")
            return
        store, device, cache = self.store, self.device_choice, self.predictors
        self._prelabel_running(True, cancellable=False)  # one image: over in moments, nothing to stop
        self.prelabel_progress.setRange(0, 0)
        self.prelabel_status.setText("Pre-labeling this image…")
        self.notice.emit(self.prelabel_status.text())
        self.prelabel_task = self.runner.start(lambda _r, _c: prelabel_image(store, image_id, device, cache),
                                               self._image_done, self._prelabel_failed)

    def _image_done(self, record) -> None:
        if self._closed:
            return
        self.prelabel_task = None
        self._prelabel_running(False)
        self.prelabel_progress.setRange(0, 1)
        self.prelabel_progress.setValue(1)
        words = uncertainty_words(record.uncertainty, record.predicted_with)
        uncertainty = f", {words}" if words else ""
        settings = f" ({record.predicted_with})" if record.predicted_with else ""
        self.prelabel_status.setText(f"{record.name} predicted by {record.model_version}{settings}{uncertainty}")
        kept = "; your mask is kept (T shows the new prediction)" if record.status in ("corrected", "reviewed") else ""
        used = self.predictors.last_used
        if used is not None:
            self._show_device(("GPU (CUDA)" if used.provider.startswith("CUDA") else "CPU")
                              + f" (last run: {used.provider})" + (f" — {used.notice}" if used.notice else ""))
            kept += f"; {used.notice}" if used.notice else ""
        self.notice.emit(self.prelabel_status.text() + kept)
        self.show_framing()
        self.image_predicted.emit(record)

    def start_prelabel_all(self, redo: bool = False) -> None:
        """Predict the images that need it; with `redo`, every image not checked by a person (see
        `PrelabelJob`)."""
        if self._read_only is not None:
            self.notice.emit(self._read_only)
            return
        if self.prelabel_task is not None:
            self.notice.emit("A pre-labeling job is running (see the Models panel); start again when it has "
                             "finished")
            return
        store, device = self.store, self.device_choice
        self._prelabel_running(True)
        self.prelabel_progress.setRange(0, 0)
        self.prelabel_status.setText("Loading the model…")
        self.prelabel_task = self.runner.start(lambda report, cancel: prelabel_all(store, device, report, cancel, redo),
                                               self._all_done, self._prelabel_failed, self._prelabel_progress)

    def _prelabel_progress(self, progress: PrelabelProgress) -> None:
        if self._closed:
            return
        self.prelabel_progress.setRange(0, max(1, progress.total))
        self.prelabel_progress.setValue(progress.done)
        eta = "" if progress.eta_seconds is None else f", {progress.eta_seconds:.0f} s left"
        self.prelabel_status.setText(f"{progress.done:,} of {progress.total:,} images, "
                                     f"{progress.images_per_second:.1f}/s{eta}")
        now = time.monotonic()
        if progress.done and now - self._last_arrival >= ARRIVALS_EVERY_S:
            self._last_arrival = now
            self.predictions_arriving.emit()

    def _all_done(self, result: PrelabelResult) -> None:
        if self._closed:
            return
        self.prelabel_task = None
        self._prelabel_running(False)
        where = "GPU (CUDA)" if result.provider.startswith("CUDA") else "CPU"
        self._show_device(f"{where} (last run: {result.provider})")
        self.prelabel_status.setText(run_summary(result))
        self.notice.emit(f"Pre-labeling: {self.prelabel_status.text().splitlines()[0]}")
        self.show_framing()
        self.predictions_changed.emit()

    def _prelabel_failed(self, message: str) -> None:
        if self._closed:
            return
        self.prelabel_task = None
        self._prelabel_running(False)
        self.prelabel_progress.setRange(0, 1)
        self.prelabel_progress.setValue(0)
        self.prelabel_status.setText(f"Pre-labeling failed: {message}")
        self.notice.emit(self.prelabel_status.text())
        self.show_framing()
        self.predictions_changed.emit()  # a run stopped part way has saved masks before it

    def cancel_prelabel(self) -> None:
        if self.prelabel_task is not None:
            self.prelabel_task.cancel()
            self.prelabel_status.setText("Cancelling…")

    # --- retraining --------------------------------------------------------------------------------------------

    _cancelling = False

    def cancel_retrain(self) -> None:
        """The job stops at its next step, which can be seconds away: until then the panel says it is stopping and
        the button cannot be pressed again."""
        if not self.retrain.running:
            return
        self.retrain.cancel()
        self._cancelling = True
        self.retrain_cancel.setEnabled(False)
        self.retrain_phase.setText("Cancelling… the active model stays as it is")

    def retrain_config(self) -> dict[str, Any]:
        options = {"epochs": self.epochs.value(), "input_size": self.input_size.currentData(), **self.extra_options}
        return TrainConfig.for_task(self.task, **options).to_dict()

    def start_retrain(self) -> bool:
        if self._read_only is not None:
            self.retrain_phase.setText(f"Not available: {self._read_only}")
            return False
        if self._activating:
            self.retrain_phase.setText("Wait until the model being activated is ready, then retrain: a new model "
                                       "is measured against the active one.")
            return False
        if self.retrain.running or not self._edits_saved():
            return False
        if self.store.count(TRAINABLE_STATUSES) == 0:
            self.retrain_phase.setText("Nothing to train on yet: correct or review some images first, then retrain.")
            return False
        try:
            config = self.retrain_config()
            job_id = self.retrain.start(config)
        except (JobConflict, ConfigError, ProjectError) as e:
            self.retrain_phase.setText(str(e))
            return False
        self.events = []
        self.last_result = None
        self._train_steps = 0
        self._cancelling = False
        self.plot.clear_data(metric_title(self.recipe.primary_metric))
        self.retrain_result.setText("" if has_validation_faces(self.store) or config.get("promote") != "auto" else
                                    "None of the checked images is a validation face yet (about one in five is "
                                    "kept for validation), so the new model cannot be measured and will not replace "
                                    "the active one. Check more images to have it measured.")
        self.retrain_phase.setText(f"Job {job_id} starting…")
        self.retrain_progress.setRange(0, 0)
        self.retrain_button.setEnabled(False)
        self.retrain_cancel.setEnabled(True)
        self.refresh_versions()
        return True

    def _edits_saved(self) -> bool:
        """A retrain reads the masks from disk, so the correction just made (still waiting for its autosave) is
        saved first; when saving fails the retrain does not start, rather than train without it."""
        failed = self.save_edits()
        if failed:
            reasons = "; ".join(sorted(set(failed.values()))[:3])
            names = ", ".join(self.unsaved_name(image_id) for image_id in list(failed)[:3])
            more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
            self.retrain_phase.setText(f"Not retrained: the corrected mask of {names}{more} could not be saved "
                                       f"({reasons}). Fix the cause, then retrain: the masks are saved again first.")
        return not failed

    def _retrain_event(self, event: JobEvent) -> None:
        if self._closed:
            return
        self.events.append(event)
        if event.phase == "train" and event.step is not None:
            self._train_steps = event.step
            self.plot.add_loss(event.step, event.loss)
        if event.phase == "validate" and event.metrics:
            self.plot.add_score(self._train_steps, event.metrics.get(self.recipe.primary_metric))
        if event.total:
            self.retrain_progress.setRange(0, event.total)
            self.retrain_progress.setValue(event.step or 0)
        elif not event.final:
            self.retrain_progress.setRange(0, 0)
        eta = f" — {event.eta_s:.0f} s left" if event.eta_s else ""
        loss = f", loss {event.loss:.4f}" if event.loss is not None and math.isfinite(event.loss) else ""
        if not self._cancelling:
            self.retrain_phase.setText(f"{event.phase}: {event.message}{loss}{eta}".strip())
        if event.final:
            self._cancelling = False
            self._retrain_finished(event)

    def _retrain_finished(self, event: JobEvent) -> None:
        self.retrain_button.setEnabled(self._read_only is None)
        self.retrain_cancel.setEnabled(False)
        self.retrain_progress.setRange(0, 1)
        self.retrain_progress.setValue(1 if event.phase == "done" else 0)
        self.last_result = event.result
        self.retrain_phase.setText(FINISHED_WORDS.get(event.phase, event.phase))  # the result below says the rest
        if event.phase == "done" and event.result:
            self.retrain_result.setText(self.describe_result(event.result))
        else:
            self.retrain_result.setText(f"{event.phase.capitalize()}: {event.message}")
        self.refresh_versions()
        self.versions_changed.emit()
        if event.result and event.result.get("promoted") and event.result.get("repredict"):
            self.predictions_changed.emit()

    @staticmethod
    def describe_result(result: dict[str, Any]) -> str:
        metric = metric_title(result.get("metric", "score"))
        new = f"{result.get('version')}: {metric} {_score(result.get('score'))}"
        baseline = result.get("baseline_version")
        val_faces = (result.get("data") or {}).get("val")
        if val_faces == 0:
            versus = " (no validation faces: neither model could be measured)"
        elif baseline:
            versus = f" vs active {baseline} {_score(result.get('baseline_score'))}"
        elif result.get("baseline_score") is not None or result.get("baseline_source") == "starter":
            versus = f" vs the starter model {_score(result.get('baseline_score'))}"
        else:
            versus = " (no active model before)"
        verdict = "promoted — now active" if result.get("promoted") else "not promoted"
        why = result.get("reason") or ""
        for said in ("not promoted: ", "promoted: "):
            if why.startswith(said):
                why = why[len(said):]  # the verdict already says it
                break
        reason = f" ({why})" if why else ""
        return f"{new}{versus}; {verdict}{reason}{repredict_outcome(result)}"

    # --- versions ----------------------------------------------------------------------------------------------

    def _versions_signature(self) -> tuple:
        """What the list of versions shows, read cheaply from the project: the active version and every row."""
        try:
            active = self.store.active_model(self.task)
            rows = self.store.model_versions(self.task)
        except Exception:  # a project database busy or gone for a moment: look again at the next tick
            return self._versions_seen
        return (active and active["version"], tuple((row["version"], row["path"]) for row in rows))

    def follow_outside_changes(self) -> None:
        """Show versions trained, activated or deleted by another program (the command line, a second studio)
        while this one is open: pre-labeling uses what the project says, so the panel must say it too."""
        if self._closed:
            return
        seen = self._versions_signature()
        if seen != self._versions_seen:
            self.refresh_versions()
            self.versions_changed.emit()

    def refresh_versions(self) -> None:
        """The trained versions, newest first, then the shipped starter model (active while no version is). A
        version whose files are gone says so and cannot be activated."""
        self._versions_seen = self._versions_signature()
        chosen = self._chosen_version()
        self.versions.clear()
        rows = list(reversed(list_versions(self.store, self.task)))
        if starter_checkpoint(self.task) is not None:
            rows.append({"version": STARTER, "metrics": None, "created": None, "path": None,
                         "active": not any(row["active"] for row in rows)})
        for row in rows:
            self.versions.addTopLevelItem(self._version_item(row))
        self._select_version(chosen)
        self._update_version_buttons()
        self._show_automatic_size()
        # a retrain decides its own promotion against the model active when it started, so no switching meanwhile
        free = self._read_only is None and not self._activating and not self.retrain.running
        candidates = rollback_candidates(self.store, self.task)
        self.rollback_button.setEnabled(free and bool(candidates))
        self.rollback_button.setToolTip(_rollback_hint(candidates, activation_history(self.store, self.task)))

    def _caution_about_size(self) -> None:
        """A size far from the one the start model works at costs it much of what it learned: said when chosen,
        before the time is spent, not only in the job's log afterwards."""
        chosen, own = self.input_size.currentData(), auto_start_size(self.store, self.task)
        if chosen and own and chosen != own:
            self.retrain_phase.setText(f"The model a retrain starts from works at {own} px: at {chosen} px it starts "
                                       "from a lower score, and a short retrain may not win it back, so the new model "
                                       "may not beat the active one.")
        else:
            self.retrain_phase.setText("Fine-tunes on the corrected images in a separate process.")

    def _show_automatic_size(self) -> None:
        """The automatic size is the one the model a retrain starts from works at (a model fine-tuned at another
        size loses much of what it learned), so the choice names it, and follows the active model."""
        size = auto_start_size(self.store, self.task)
        text = f"Auto: model's own, {size} px" if size else f"Auto: {self.recipe.input_size} px"
        self.input_size.setItemText(0, text)

    def _version_item(self, row: dict[str, Any]) -> QTreeWidgetItem:
        score = version_score(row.get("metrics"), self.recipe)
        usable = row["version"] == STARTER or has_checkpoint(row.get("path") or None)
        state = ", ".join((["active"] if row["active"] else []) + ([] if usable else ["files missing"]))
        created = (row.get("created") or "").replace("T", " ")[:16]
        item = QTreeWidgetItem([row["version"], _score(score) if row["version"] != STARTER else "", created, state])
        item.setData(0, Qt.ItemDataRole.UserRole, row["version"])
        item.setData(0, USABLE_ROLE, usable)
        item.setData(0, ACTIVE_ROLE, bool(row["active"]))
        item.setToolTip(CREATED_COLUMN, created)
        if row["version"] == STARTER:
            item.setToolTip(VERSION_COLUMN, "The model shipped with the application; new projects start with it")
        elif created:
            item.setToolTip(VERSION_COLUMN, f"Trained {created}")
        if not usable:
            item.setToolTip(STATE_COLUMN, f"{row.get('path')} no longer holds this version's checkpoint")
            for column in range(4):
                item.setForeground(column, self.palette().brush(self.palette().ColorRole.PlaceholderText))
        if row["active"]:
            item.setIcon(VERSION_COLUMN, qta.icon("fa5s.check-circle", color="#4caf50"))
            bold = QFont(self.versions.font())
            bold.setBold(True)
            for column in range(4):
                item.setFont(column, bold)
        return item

    def _chosen_version(self) -> str | None:
        item = self.versions.currentItem()
        return None if item is None else item.data(0, Qt.ItemDataRole.UserRole)

    def _select_version(self, chosen: str | None) -> None:
        """After the list is re-read, the version the user chose stays selected while it can still be activated;
        otherwise the newest one that can be, so Activate always says which model it would switch to."""
        items = [self.versions.topLevelItem(i) for i in range(self.versions.topLevelItemCount())]
        candidates = [item for item in items if _activatable(item)]
        kept = [item for item in candidates if item.data(0, Qt.ItemDataRole.UserRole) == chosen]
        target = (kept or candidates or [None])[0]
        if target is not None:
            self.versions.setCurrentItem(target)

    def version_names(self) -> list[str]:
        """The trained versions listed, newest first (the starter row left out)."""
        names = [self.versions.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)
                 for i in range(self.versions.topLevelItemCount())]
        return [name for name in names if name != STARTER]

    def _update_version_buttons(self) -> None:
        self._update_activate()
        self._update_delete()

    def _update_activate(self) -> None:
        """Activate needs a version to switch to: a selected row, with its files, that is not already active."""
        item = self.versions.currentItem()
        free = self._read_only is None and not self._activating and not self.retrain.running
        self.activate_button.setEnabled(free and _activatable(item))
        if item is None:
            self.activate_button.setToolTip("Select a version to activate")
        elif item.data(0, ACTIVE_ROLE):
            self.activate_button.setToolTip(f"{item.text(VERSION_COLUMN)} is already the active model")
        else:
            self.activate_button.setToolTip(f"Make {item.text(VERSION_COLUMN)} the active model")

    def _update_delete(self) -> None:
        """Delete needs a trained version that is not the active one, and waits while the active model changes."""
        item = self.versions.currentItem()
        free = self._read_only is None and not self._activating and not self.retrain.running
        self.delete_button.setEnabled(free and _removable(item))
        if item is None or item.data(0, Qt.ItemDataRole.UserRole) == STARTER:
            self.delete_button.setToolTip("Select a trained version to delete")
        elif item.data(0, ACTIVE_ROLE):
            self.delete_button.setToolTip(f"{item.text(VERSION_COLUMN)} is the active model; activate another "
                                          "version first to delete it")
        elif not free:
            self.delete_button.setToolTip("Wait until the retrain or activation has ended")
        else:
            self.delete_button.setToolTip(f"Delete {item.text(VERSION_COLUMN)} and its files")

    def delete_selected(self) -> None:
        """Asks first: a deleted version cannot be brought back."""
        item = self.versions.currentItem()
        if not self.delete_button.isEnabled() or not _removable(item):
            return
        version = item.data(0, Qt.ItemDataRole.UserRole)
        answer = QMessageBox.question(self, "Delete model version",
                                      f"Delete the {self.task} model {version} and its files? This cannot be undone.",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return
        try:
            deleted = delete_version(self.store, self.task, version)
        except (ProjectError, OSError) as error:
            self.retrain_phase.setText(f"{version} was not deleted: {error}")
        else:
            self.retrain_phase.setText(f"Deleted {version} ({deleted.size_bytes / 1e6:.1f} MB freed)")
        self.refresh_versions()
        self.versions_changed.emit()

    def activate_selected(self) -> None:
        item = self.versions.currentItem()
        if item is None:
            self.retrain_phase.setText("Select a version to activate.")
            return
        version = item.data(0, Qt.ItemDataRole.UserRole)
        store, task = self.store, self.task
        self._change_active(lambda announce: activate(store, task, version, announce=announce))

    def roll_back(self) -> None:
        store, task = self.store, self.task
        self._change_active(lambda announce: rollback(store, task, announce=announce))

    def _change_active(self, change) -> None:
        """Activation may first export a version to ONNX, so it runs off the GUI thread; the buttons stay off
        until it ends, whatever refreshes the list meanwhile."""
        self._activating = True
        self.activate_button.setEnabled(False)
        self.delete_button.setEnabled(False)
        self.rollback_button.setEnabled(False)
        self.retrain_button.setEnabled(False)
        self.runner.start(lambda report, _c: change(report), self._activated, self._activation_failed,
                          self._activation_progress)

    def _activation_progress(self, text: str) -> None:
        """Said before a version is exported to ONNX on the way, the one part of activating that takes long."""
        if not self._closed:
            self.retrain_phase.setText(text[:1].upper() + text[1:])

    def _activation_failed(self, message: str) -> None:
        if self._closed:
            return
        self._activating = False
        self.retrain_button.setEnabled(self._read_only is None and not self.retrain.running)
        self.retrain_phase.setText(message)
        self.refresh_versions()

    def _activated(self, row: dict[str, Any]) -> None:
        if self._closed:
            return
        self._activating = False
        self.retrain_button.setEnabled(self._read_only is None and not self.retrain.running)
        name = "The starter model" if row["version"] == STARTER else row["version"]
        self.retrain_phase.setText(f"{name} is now the active {self.task} model; pre-label to use it on the images")
        self.refresh_versions()
        self.versions_changed.emit()

    def close_jobs(self) -> None:
        """Cancel pre-labeling, stop a running retrain (the active model stays) and ignore late events."""
        self.cancel_prelabel()
        self.retrain.close()
        self._closed = True
        self._versions_watch.stop()


def _activatable(item: QTreeWidgetItem | None) -> bool:
    return item is not None and bool(item.data(0, USABLE_ROLE)) and not item.data(0, ACTIVE_ROLE)


def _removable(item: QTreeWidgetItem | None) -> bool:
    return (item is not None and item.data(0, Qt.ItemDataRole.UserRole) != STARTER
            and not item.data(0, ACTIVE_ROLE))


def _row(*widgets: QWidget, stretch_first: bool = False) -> QHBoxLayout:
    """Widgets side by side; with `stretch_first` the first takes the room the others leave."""
    row = QHBoxLayout()
    for index, widget in enumerate(widgets):
        row.addWidget(widget, 1 if stretch_first and index == 0 else 0)
    return row


def _rollback_hint(candidates: list[str], history: list[str]) -> str:
    if not candidates:
        return "Nothing to roll back to"
    if candidates[0] == STARTER:
        return "Go back to the starter model shipped with the studio (every version is kept)"
    if candidates[0] in history:
        return f"Activate {candidates[0]} again, the model that was active before"
    return f"Activate {candidates[0]}, the model the active one was trained from"
