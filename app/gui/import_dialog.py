"""The import dialog: choose a dataset, its format and what its masks become; check it, then import it with progress
and cancel. Both buttons are the core call the command line makes (`import_dataset`, the check as a dry run). The
core checks every label before writing any, so a refused import is shown as its list of problems and the project is
left as it was.
"""

from __future__ import annotations

from pathlib import Path

import qtawesome as qta
from faceparse.core.formats import FORMATS
from faceparse.core.importer import ImportCancelled, ImportRefused, ImportReport, import_dataset
from faceparse.core.schemas import builtin_schema_names
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .dialog_memory import beside_project, choose, recall, remember
from .task_dialog import TaskDialog
from .workers import Task, TaskRunner

KIND_TITLES = {"corrected": "Corrected masks", "predicted": "Predictions"}
REPORT_LINES = 500


def _listed(title: str, lines: list[str]) -> list[str]:
    shown = [f"  - {line}" for line in lines[:REPORT_LINES]]
    more = [f"  ... and {len(lines) - REPORT_LINES:,} more"] if len(lines) > REPORT_LINES else []
    return [f"{title} ({len(lines):,}):", *shown, *more] if lines else []


def report_text(report: ImportReport) -> str:
    """The report as the dialog shows it: a refusal's problems first, then the counts, class mapping, skips and
    what the format reader left out."""
    lines = []
    if report.problems:
        refused = (f"An import from {report.source} would be refused." if report.dry_run else
                   f"Nothing was imported from {report.source}.")
        lines += [refused, *_listed("Problems", report.problems), ""]
    else:
        summary = report.summary()
        lines += [summary[0].upper() + summary[1:], ""]
    lines.append(f"Labels found: {report.labels:,}")
    if not report.problems:
        lines.append(f"{'To import' if report.dry_run else 'Imported'}: "
                     f"{report.planned if report.dry_run else report.imported:,}")
        lines.append(f"Already identical: {report.unchanged:,}")
    mapped = [f"{source} -> {target}" for source, target in sorted(report.class_map.items()) if source != target]
    lines += _listed("Classes renamed", mapped)
    lines += _listed("Labels without a matching image, skipped", report.skipped)
    lines += _listed("Notes", report.notes)
    return "\n".join(lines)


def _all_coco_splits(chosen: str) -> str:
    """A file of a split export (`annotations/instances_<split>.json` beside the others) stands for the whole
    export, so browsing to one split imports every split; any other COCO file is taken as it is."""
    path = Path(chosen)
    if path.parent.name == "annotations" and len(list(path.parent.glob("instances_*.json"))) > 1:
        return str(path.parent.parent)
    return chosen


class ImportDialog(TaskDialog):
    labels_changed = Signal()  # an import ran and may have written masks (re-read the list and the open image)

    def __init__(self, store: ProjectStore, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Import labels")
        self.setObjectName("importDialog")
        self.store = store
        self.runner = runner
        self.task: Task | None = None
        self.checking = False
        self.report: ImportReport | None = None
        self.format = QComboBox(self)
        for name, spec in FORMATS.items():
            self.format.addItem(spec.title, name)
        self.format.setCurrentIndex(max(0, self.format.findData("index-png")))
        self.source = QLineEdit(self)
        self.source.setPlaceholderText("a dataset folder, or a COCO JSON file")
        self.browse_button = QPushButton(qta.icon("fa5s.folder-open"), "", self)
        self.browse_button.clicked.connect(self._browse)
        source_row = QHBoxLayout()
        source_row.addWidget(self.source, 1)
        source_row.addWidget(self.browse_button)
        self.kind = QComboBox(self)
        for key, title in KIND_TITLES.items():
            self.kind.addItem(title, key)
        self.schema = QComboBox(self)
        self.schema.addItem("Detect (the dataset's schema.json or the format's own)", None)
        for name in builtin_schema_names():
            self.schema.addItem(name, name)
        self.ignore_unmatched = QCheckBox("Skip labels without a matching image", self)
        self.overwrite = QCheckBox("Replace corrected masks that differ", self)
        self.scale_masks = QCheckBox("Resize masks of the image's aspect ratio but another size", self)
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("Source", source_row)
        form.addRow("Import as", self.kind)
        form.addRow("Dataset schema", self.schema)
        for box in (self.ignore_unmatched, self.overwrite, self.scale_masks):
            form.addRow("", box)
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.status = QLabel(self)
        self.status.setObjectName("importStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.report_view = QPlainTextEdit(self)
        self.report_view.setObjectName("importReport")
        self.report_view.setReadOnly(True)
        self.report_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.report_view.setPlaceholderText("Check shows what an import would do, without changing anything.")
        self.buttons = QDialogButtonBox(self)
        self.check_button = self.buttons.addButton("Check", QDialogButtonBox.ButtonRole.ActionRole)
        self.check_button.setIcon(qta.icon("fa5s.clipboard-check"))
        self.import_button = self.buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.import_button.setAutoDefault(False)
        self.check_button.setDefault(True)  # Enter checks; writing masks takes a deliberate click
        self.import_button.setIcon(qta.icon("fa5s.file-import"))
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.check_button.clicked.connect(lambda: self.start(dry_run=True))
        self.import_button.clicked.connect(lambda: self.start(dry_run=False))
        self.close_button.clicked.connect(self._close_or_cancel)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.report_view, 1)
        layout.addWidget(self.buttons)
        self.resize(640, 520)
        self._recall()

    def _recall(self) -> None:
        last = recall(self.store, "import")
        choose(self.format, last.get("format"))
        choose(self.kind, last.get("kind"))
        choose(self.schema, last.get("schema"))
        if isinstance(last.get("source"), str):
            self.source.setText(last["source"])
        self.ignore_unmatched.setChecked(bool(last.get("ignore_unmatched", False)))
        self.scale_masks.setChecked(bool(last.get("scale_masks", False)))

    def _browse(self) -> None:
        start = self.source.text().strip() or str(self.store.root.parent)
        if FORMATS[self.format.currentData()].reads_file:
            path, _ = QFileDialog.getOpenFileName(self, "COCO annotations", start, "COCO JSON (*.json)")
            path = _all_coco_splits(path) if path else path
        else:
            path = QFileDialog.getExistingDirectory(self, "Dataset folder", start)
        if path:
            self.source.setText(path)

    @property
    def running(self) -> bool:
        return self.task is not None

    def start(self, dry_run: bool) -> None:
        if self.running:
            return
        typed = self.source.text().strip()
        if not typed:
            self.status.setText("Choose the dataset to import.")
            return
        source = beside_project(self.store, typed)
        self.source.setText(str(source))
        options = dict(format=self.format.currentData(), kind=self.kind.currentData(),
                       source_schema=self.schema.currentData(), ignore_unmatched=self.ignore_unmatched.isChecked(),
                       overwrite=self.overwrite.isChecked(), scale_masks=self.scale_masks.isChecked(),
                       dry_run=dry_run)
        store = self.store
        remember(store, "import", {"format": options["format"], "source": str(source), "kind": options["kind"],
                                   "schema": options["source_schema"], "ignore_unmatched": options["ignore_unmatched"],
                                   "scale_masks": options["scale_masks"]})

        def run(report, cancel):
            try:
                return import_dataset(store, source, progress=lambda done, total: report((done, total)),
                                      cancel=cancel, **options)
            except ImportRefused as e:
                return e.report
            except ImportCancelled:
                return None

        self.checking = dry_run
        self.report = None
        self.report_view.clear()
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.status.setText("Checking the labels…" if dry_run else "Importing…")
        self._set_running(True)
        self.task = self._start_task(run)

    def _progress(self, event) -> None:
        done, total = event
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def _finished(self, report: ImportReport | None) -> None:
        """A report (refused ones included) or None: the core stopped on Cancel before writing anything."""
        cancelled = self.task is not None and self.task.cancelled
        self.task = None
        self.report = report
        self._set_running(False)
        self.progress.setVisible(False)
        what = "Check" if self.checking else "Import"
        if report is None:
            self.status.setText(f"{what} cancelled; nothing was imported.")
            return
        self.report_view.setPlainText(report_text(report))
        count = f"{len(report.problems):,} problem{'s' if len(report.problems) != 1 else ''}"
        if report.problems:
            self.status.setText(f"Refused: {count}, listed below. Nothing was imported." if not self.checking
                                else f"The check found {count}, listed below; an import would be refused.")
        elif self.checking:
            self.status.setText(f"Check passed: Import would write {report.planned:,} {report.kind} "
                                f"mask{'' if report.planned == 1 else 's'}.")
        else:
            late = " (the masks were already being written when Cancel was pressed)" if cancelled else ""
            masks = f"mask{'' if report.imported == 1 else 's'}"
            self.status.setText(f"Imported {report.imported:,} {report.kind} {masks}{late}.")
            self.labels_changed.emit()

    def _failed(self, message: str) -> None:
        """An import that failed while writing may have saved some masks; the message says how many."""
        self.task = None
        self._set_running(False)
        self.progress.setVisible(False)
        self.status.setText(f"{'Check' if self.checking else 'Import'} failed: {message}")
        if not self.checking:
            self.labels_changed.emit()

    def _set_running(self, running: bool) -> None:
        self.check_button.setEnabled(not running)
        self.import_button.setEnabled(not running)
        self.close_button.setText(("Cancel check" if self.checking else "Cancel import") if running else "Close")
        for widget in (self.format, self.source, self.browse_button, self.kind, self.schema,
                       self.ignore_unmatched, self.overwrite, self.scale_masks):
            widget.setEnabled(not running)
