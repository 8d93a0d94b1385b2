"""The export dialog: choose a format, which images, the split and the destination; run `export_dataset` with
progress and cancel. The export itself is the core call the command line makes; it writes into a temporary folder
and renames it into place, so cancelling or a failure leaves the destination as it was.
"""

from __future__ import annotations

from pathlib import Path

import qtawesome as qta
from faceparse.core.export import (
    SELECTION_TITLES,
    SELECTIONS,
    DestinationNotEmpty,
    ExportError,
    ExportResult,
    export_dataset,
)
from faceparse.core.formats import FORMATS
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .dialog_memory import beside_project, choose, recall, remember
from .task_dialog import TaskDialog
from .workers import Task, TaskRunner

REPLACE_TEXT = "Replace the destination if it holds an earlier export"


class ExportDialog(TaskDialog):
    def __init__(self, store: ProjectStore, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export dataset")
        self.setObjectName("exportDialog")
        self.store = store
        self.runner = runner
        self.task: Task | None = None
        self.result: ExportResult | None = None
        self._choices: dict = {}
        self.format = QComboBox(self)
        for name, spec in FORMATS.items():
            self.format.addItem(spec.title, name)
        self.format.setCurrentIndex(max(0, self.format.findData("index-png")))
        self.selection = QComboBox(self)
        for key in SELECTIONS:
            self.selection.addItem(SELECTION_TITLES[key].capitalize(), key)
        self.selection.setCurrentIndex(max(0, self.selection.findData("corrected")))
        self.schema = QComboBox(self)
        self._fill_schemas()
        self.format.currentIndexChanged.connect(self._fill_schemas)
        self.split = QLineEdit("0.8,0.1,0.1", self)
        self.split.setToolTip("train,val,test fractions; duplicates of one photo stay in one split")
        self.seed = QSpinBox(self)
        self.seed.setRange(0, 2**31 - 1)
        self.destination = QLineEdit(str(store.root.parent / f"{store.root.name}-dataset"), self)
        browse = QPushButton(qta.icon("fa5s.folder-open"), "", self)
        browse.clicked.connect(self._browse)
        self.overwrite = QCheckBox(REPLACE_TEXT, self)
        destination_row = QHBoxLayout()
        destination_row.addWidget(self.destination, 1)
        destination_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("Images", self.selection)
        form.addRow("Label schema", self.schema)
        form.addRow("Split", self.split)
        form.addRow("Seed", self.seed)
        form.addRow("Destination", destination_row)
        form.addRow("", self.overwrite)
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.status = QLabel(self)
        self.status.setObjectName("exportStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(self)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setIcon(qta.icon("fa5s.file-export"))
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.export_button.clicked.connect(self.start)
        self.close_button.clicked.connect(self._close_or_cancel)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.resize(560, self.sizeHint().height())
        self._recall()

    def _fill_schemas(self) -> None:
        """The schemas the masks can be written in. The first is what the format writes by default: the project's
        own, or the format's own classes (LaPa) when the project's schema maps to them; the project's own is
        always offered by name as well."""
        project = self.store.schema
        native = FORMATS[self.format.currentData()].export_schema
        chosen = self.schema.currentData()
        self.schema.clear()
        if native is None or native == project.name:
            self.schema.addItem(f"{project.name} (the project's)", None)
        else:
            if native in project.mappings:
                self.schema.addItem(f"{native} (the format's own classes, mapped)", None)
            self.schema.addItem(f"{project.name} (the project's)", project.name)
        for target in sorted(set(project.mappings) - {native}):
            self.schema.addItem(f"{target} (mapped)", target)
        choose(self.schema, chosen)

    def _recall(self) -> None:
        last = recall(self.store, "export")
        choose(self.format, last.get("format"))
        choose(self.selection, last.get("only"))
        choose(self.schema, last.get("schema"))
        if isinstance(last.get("split"), str):
            self.split.setText(last["split"])
        if isinstance(last.get("seed"), int):
            self.seed.setValue(last["seed"])
        if isinstance(last.get("destination"), str) and last["destination"]:
            self.destination.setText(last["destination"])

    def _browse(self) -> None:
        typed = self.destination.text().strip()
        current = beside_project(self.store, typed) if typed else self.store.root.parent / "x"
        folder = QFileDialog.getExistingDirectory(self, "Export into", str(current.parent))
        if folder:
            name = current.name if typed else f"{self.store.root.name}-dataset"
            self.destination.setText(str(Path(folder) / name))

    @property
    def running(self) -> bool:
        return self.task is not None

    def start(self) -> None:
        if self.running:
            return
        options = dict(format=self.format.currentData(), only=self.selection.currentData(),
                       split=self.split.text(), seed=self.seed.value(), target_schema=self.schema.currentData(),
                       overwrite=self.overwrite.isChecked())
        typed = self.destination.text().strip()
        if not typed:
            self.status.setText("Choose a destination folder.")
            return
        out_dir = beside_project(self.store, typed)
        self.destination.setText(str(out_dir))
        store = self.store
        self._choices = {"format": options["format"], "only": options["only"], "split": options["split"],
                         "seed": options["seed"], "schema": options["target_schema"], "destination": str(out_dir)}

        def run(report, cancel):
            try:
                return export_dataset(store, out_dir, progress=lambda done, total: report((done, total)),
                                      cancel=cancel, **options)
            except DestinationNotEmpty as e:
                raise ExportError(f"{e}: tick \"{REPLACE_TEXT}\"") from None

        self.result = None
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.status.setText("Exporting…")
        self._set_running(True)
        self.task = self._start_task(run)

    def _progress(self, event) -> None:
        done, total = event
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        if self.task is None or not self.task.cancelled:  # "Cancelling…" stays until the export has stopped
            self.status.setText(f"Exporting… {done:,} of {total:,} images")

    def _finished(self, result: ExportResult) -> None:
        self.task = None
        self.result = result
        remember(self.store, "export", self._choices)  # only choices that worked are offered again
        self._set_running(False)
        self.progress.setVisible(False)
        splits = ", ".join(f"{k} {v:,}" for k, v in result.splits.items() if v)
        left_out = ""
        if result.skipped:
            more = f"\n… and {len(result.skipped) - 5:,} more (all are listed in the folder's README.md)" \
                if len(result.skipped) > 5 else ""
            left_out = f"\n\nLeft out {len(result.skipped):,}:\n" + "\n".join(result.skipped[:5]) + more
        images = f"{result.count:,} image{'s' if result.count != 1 else ''}"
        self.status.setText(f"Exported {images} ({splits}) in {result.seconds:.1f} s "
                            f"to {result.out_dir}, {result.schema_summary()}{left_out}")

    def _failed(self, message: str) -> None:
        cancelled = self.task is not None and self.task.cancelled
        self.task = None
        self._set_running(False)
        self.progress.setVisible(False)
        self.status.setText("Export cancelled; the destination was left as it was." if cancelled
                            else f"Export failed: {message}")

    def _set_running(self, running: bool) -> None:
        self.export_button.setEnabled(not running)
        self.close_button.setText("Cancel export" if running else "Close")
        for widget in (self.format, self.selection, self.schema, self.split, self.seed, self.destination,
                       self.overwrite):
            widget.setEnabled(not running)
