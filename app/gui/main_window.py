"""The studio's main window: menus, toolbar, docks and status bar around the open project's workspace.

The window only arranges widgets and routes commands: each action calls a method of the workspace (canvas, session,
list), and those call the core. Opening a folder scans it on a background thread; the list fills as soon as the
scan lands, and sizes and hashes are read afterwards without blocking anything.
"""

from __future__ import annotations

import os
from pathlib import Path

import qtawesome as qta
import shiboken6
from faceparse.core.changed_photos import KeptMasks, keep_changed_masks
from faceparse.core.imageio import is_image_file
from faceparse.core.model_resolver import ModelNotFoundError, find_model, task_for_schema
from faceparse.core.prelabel import is_imported
from faceparse.core.schemas import builtin_schema_names
from faceparse.core.store import DB_NAME, PROJECT_DIR_NAME, ProjectError, ProjectStore, why_not_indexed
from faceparse.core.thumbnails import ThumbnailCache
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QToolBar,
    QToolButton,
)

from .actions import build_actions, keep_page_keys
from .export_dialog import ExportDialog
from .image_list import PHOTO_CHANGED_HINT
from .import_dialog import ImportDialog
from .row_menu import install_row_menu
from .session import AUTOSAVE_MS
from .settings import StudioSettings
from .shortcuts_dialog import ShortcutsDialog
from .welcome import WelcomePage
from .workers import SerialWriter, TaskRunner
from .workspace import Workspace

APP_TITLE = "FaceParse Studio"
PRELABEL_ON_OPEN = "prelabel_on_open"
TOOL_ACTIONS = {"tool_brush": "brush", "tool_eraser": "eraser", "tool_fill": "fill", "tool_polygon": "polygon",
                "tool_picker": "picker"}
REMEMBERED_TOOLS = ("brush", "eraser", "fill", "polygon")  # the picker is a moment's tool, not a habit
PROJECT_ACTIONS = ("export", "import_labels", "prelabel_all", "prelabel_all_again", "retrain", "canvas_only",
                   "keep_changed_masks")
BACKGROUND_THREADS = 4
"""The pool shared by the details read, pre-labeling, export, import and model activation: room for an export or
an import to start at once while a long pre-label run and the details read of a big project are going."""
ROW_MENU_ACTIONS = ("mark_reviewed", "unmark_reviewed", "accept_prediction", None, "prelabel_image")
"""The window's commands a right-click on a list row offers for that image (None: a separator)."""
NAVIGATION_ACTIONS = ("previous_image", "next_image", "next_unreviewed", "find_image")
WRITING_ACTIONS = ("save", "import_labels", "undo", "redo", "tool_brush", "tool_eraser", "tool_fill", "tool_polygon",
                   "keep_changed_masks", "prelabel_all_again")
"""Off in a read-only project (an archive, a share, read-only media), which the studio opens to look and export.
The review and model keys (R, Shift+R, U, Ctrl+Enter, Ctrl+L, Ctrl+T) stay on there, so pressing one says why it
cannot apply instead of doing nothing."""


def project_folder_for(path: str | os.PathLike) -> tuple[Path, Path | None]:
    """The image folder to open for a dropped or chosen path, and the image to show first if one was named.
    A photo or folder inside an existing project opens that project, never a second one nested in it."""
    p = Path(path).expanduser()
    if p.is_file() and p.name == DB_NAME and p.parent.name == PROJECT_DIR_NAME:
        return p.parent.parent, None
    if p.is_dir() and p.name == PROJECT_DIR_NAME:
        return p.parent, None
    first_image = p if p.is_file() and is_image_file(p.name) else None
    folder = p.parent if first_image is not None else p
    if folder.is_dir() and not ProjectStore.is_project(folder):
        outer = ProjectStore.enclosing_project(folder)
        if outer is not None:
            return outer, first_image
    return folder, first_image


def _open_read_only(folder: Path) -> ProjectStore | None:
    """The project of `folder` opened read-only when that is why it could not be opened for work; None otherwise
    (the first error is the one to show)."""
    if not ProjectStore.is_project(folder):
        return None
    try:
        store = ProjectStore.open_for_reading(folder)
    except ProjectError:
        return None
    if not store.read_only:
        store.close()
        return None
    return store


def _chosen_row(ws: Workspace) -> int | None:
    index = ws.image_list.view.currentIndex()
    return index.row() if index.isValid() else None


def _fill_details(store: ProjectStore, cancel) -> bool:
    """Read sizes and hashes; True when some photo turned out broken or a renamed one was found again with its
    masks, so the list must be drawn again. Then the thumbnails of photos that were replaced, renamed or removed
    go, so the thumbnail folder does not grow with every retouch."""
    before = store.count_errors(), store.count_missing()
    store.fill_details(progress=lambda *_: not cancel.is_set())
    if not cancel.is_set() and not store.read_only:
        ThumbnailCache(store).prune()
    return (store.count_errors(), store.count_missing()) != before


class MainWindow(QMainWindow):
    def __init__(self, settings: StudioSettings | None = None, autosave_ms: int = AUTOSAVE_MS):
        super().__init__()
        self.setObjectName("mainWindow")
        self.settings = settings or StudioSettings()
        self.autosave_ms = autosave_ms
        self.writer = SerialWriter(self)
        self.jobs = TaskRunner(BACKGROUND_THREADS, self)
        self.ws: Workspace | None = None
        self._details_task = None
        self._asking_about_unsaved = False
        self._open_failed = False
        self._unopened_chosen = False
        """The image chosen in the list could not be opened: the title names it until another one opens."""
        self._opening_error: str | None = None
        self._review_asked: int | None = None
        self._kept_changed_in: Workspace | None = None
        """The project whose changed photos the user chose to keep: the check of every file, finishing later, then
        updates their badges without replacing the keep's summary with its older warning."""
        self._warning_box: QMessageBox | None = None
        self._warning_repeats = 0
        self.actions = build_actions(self)
        self.welcome = WelcomePage(self)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.welcome)
        self.setCentralWidget(self.stack)
        self.list_dock = self._dock("Images", "imagesDock", Qt.DockWidgetArea.LeftDockWidgetArea)
        self.palette_dock = self._dock("Classes", "classesDock", Qt.DockWidgetArea.RightDockWidgetArea)
        self.models_dock = self._dock("Models", "modelsDock", Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.palette_dock, self.models_dock)
        self.palette_dock.raise_()
        self._build_toolbar()
        self._build_menus()
        self._build_status_bar()
        self._connect_actions()
        self.welcome.open_requested.connect(self.choose_folder)
        self.welcome.recent_chosen.connect(self.open_folder)
        self.setAcceptDrops(True)
        self.resize(1400, 900)
        self._fresh_layout = not self.settings.has_window_state()
        self.settings.restore_window(self)
        self._panel_layout = None
        self._canvas_only_layout = None
        self._hide_panels()
        self._refresh_recent()
        self._update_enabled()
        self._update_title()

    # --- construction ------------------------------------------------------------------------------------------

    def _dock(self, title: str, name: str, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable |
                         QDockWidget.DockWidgetFeature.DockWidgetFloatable |
                         QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _build_toolbar(self) -> None:
        a = self.actions
        bar = QToolBar("Main", self)
        bar.setObjectName("mainToolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.addToolBar(bar)
        # Actions first, the two controls last: in a narrow window what hides behind "»" is the brush size (also
        # on [ and ]) and the opacity, not Mark Reviewed.
        for name in ("open_folder", "save", None, "undo", "redo", None, *TOOL_ACTIONS, None, "toggle_overlay",
                     "toggle_outline", "toggle_prediction", None, "zoom_fit", "zoom_actual", None, "previous_image",
                     "next_image", "next_unreviewed", None, "accept_prediction", "mark_reviewed", None):
            bar.addSeparator() if name is None else bar.addAction(a[name])
        bar.addWidget(QLabel(" Size ", bar))
        self.brush_spin = QSpinBox(bar)
        self.brush_spin.setObjectName("brushSize")
        self.brush_spin.setRange(1, 512)
        self.brush_spin.setSuffix(" px")
        self.brush_spin.setValue(self.settings.get("brush_size", 20, int))
        bar.addWidget(self.brush_spin)
        bar.addWidget(QLabel("  Opacity ", bar))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, bar)
        self.opacity_slider.setObjectName("opacity")
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setFixedWidth(110)
        self.opacity_slider.setValue(self.settings.get("overlay_opacity", 55, int))
        self.opacity_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space and the tool keys stay with the canvas
        bar.addWidget(self.opacity_slider)
        a["toggle_overlay"].setChecked(True)
        a["toggle_outline"].setChecked(self.settings.get("outline", False, bool))
        remembered = self.settings.get("tool", "brush", str)
        a[next((n for n, t in TOOL_ACTIONS.items() if t == remembered and t in REMEMBERED_TOOLS), "tool_brush")
          ].setChecked(True)
        more = bar.findChild(QToolButton, "qt_toolbar_ext_button")
        if more is not None:  # in a narrow window the rest of the toolbar hides behind it: make it plain to see
            more.setIcon(qta.icon("fa5s.angle-double-right"))
            more.setToolTip("More tools: the window is too narrow to show them all")
        self.toolbar = bar
        self.brush_spin.installEventFilter(self)
        keep_page_keys(self.brush_spin)
        self.brush_spin.lineEdit().returnPressed.connect(self._focus_canvas)

    def _build_menus(self) -> None:
        a, menu = self.actions, self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addAction(a["open_folder"])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addAction(a["save"])
        file_menu.addAction(a["import_labels"])
        file_menu.addAction(a["export"])
        file_menu.addSeparator()
        file_menu.addAction(a["quit"])
        edit_menu = menu.addMenu("&Edit")
        for name in ("undo", "redo", None, "accept_prediction", "mark_reviewed", "review_and_next", "unmark_reviewed"):
            edit_menu.addSeparator() if name is None else edit_menu.addAction(a[name])
        tools_menu = menu.addMenu("&Tools")
        for name in (*TOOL_ACTIONS, None, "brush_smaller", "brush_larger"):
            tools_menu.addSeparator() if name is None else tools_menu.addAction(a[name])
        view_menu = menu.addMenu("&View")
        for name in ("zoom_fit", "zoom_actual", None, "toggle_overlay", "toggle_outline", "toggle_prediction",
                     "solo_class", None, "canvas_only"):
            view_menu.addSeparator() if name is None else view_menu.addAction(a[name])
        self.view_menu = view_menu
        for dock in (self.list_dock, self.palette_dock, self.models_dock):
            view_menu.addAction(dock.toggleViewAction())
            dock.toggleViewAction().triggered.connect(self._leave_canvas_only)
        image_menu = menu.addMenu("&Image")
        for name in ("previous_image", "next_image", "next_unreviewed", "find_image", None, "keep_changed_masks"):
            image_menu.addSeparator() if name is None else image_menu.addAction(a[name])
        self.models_menu = menu.addMenu("&Models")
        for name in ("prelabel_image", "prelabel_all", "prelabel_all_again", "retrain", None, "prelabel_on_open"):
            self.models_menu.addSeparator() if name is None else self.models_menu.addAction(a[name])
        a["prelabel_on_open"].setChecked(self.settings.get(PRELABEL_ON_OPEN, True, bool))
        menu.addMenu("&Help").addAction(a["shortcuts"])

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.cursor_label = QLabel(self)
        self.cursor_label.setObjectName("cursorInfo")
        self.cursor_label.setMinimumWidth(260)
        self.zoom_label = QLabel(self)
        self.position_label = QLabel(self)
        for widget in (self.cursor_label, self.zoom_label, self.position_label):
            bar.addPermanentWidget(widget)

    def _connect_actions(self) -> None:
        a = self.actions
        a["open_folder"].triggered.connect(self.choose_folder)
        a["quit"].triggered.connect(self.close)
        a["export"].triggered.connect(self.show_export)
        a["import_labels"].triggered.connect(self.show_import)
        a["save"].triggered.connect(lambda: self.ws and self.ws.session.save_all())
        a["undo"].triggered.connect(self.undo)
        a["redo"].triggered.connect(self.redo)
        for name, tool in TOOL_ACTIONS.items():
            a[name].triggered.connect(lambda _checked=False, t=tool: self._set_tool(t))
        a["brush_smaller"].triggered.connect(lambda: self.brush_spin.setValue(max(1, min(self.brush_spin.value() - 1,
                                                                               round(self.brush_spin.value() / 1.2)))))
        a["brush_larger"].triggered.connect(lambda: self.brush_spin.setValue(max(self.brush_spin.value() + 1,
                                                                               round(self.brush_spin.value() * 1.2))))
        a["zoom_fit"].triggered.connect(lambda: self.ws and self.ws.canvas.fit())
        a["zoom_actual"].triggered.connect(lambda: self.ws and self.ws.canvas.actual_pixels())
        a["toggle_outline"].toggled.connect(self._outline_toggled)
        a["toggle_overlay"].toggled.connect(lambda on: self.ws and self.ws.canvas.set_overlay_visible(on))
        a["solo_class"].toggled.connect(lambda on: self.ws and self.ws.palette.set_solo(on))
        a["canvas_only"].toggled.connect(self._set_canvas_only)
        a["toggle_prediction"].toggled.connect(self._show_prediction)
        a["previous_image"].triggered.connect(lambda: self.step_image(-1))
        a["next_image"].triggered.connect(lambda: self.step_image(1))
        a["next_unreviewed"].triggered.connect(self.next_unreviewed)
        a["find_image"].triggered.connect(self._find_image)
        a["accept_prediction"].triggered.connect(lambda: self.ws and self.ws.session.accept_prediction())
        a["mark_reviewed"].triggered.connect(self.mark_reviewed)
        a["review_and_next"].triggered.connect(self.review_and_next)
        a["unmark_reviewed"].triggered.connect(self.unmark_reviewed)
        a["prelabel_image"].triggered.connect(self.prelabel_image)
        a["prelabel_all"].triggered.connect(lambda: self.prelabel_all())
        a["prelabel_all_again"].triggered.connect(self.prelabel_all_again)
        a["retrain"].triggered.connect(self.retrain)
        a["keep_changed_masks"].triggered.connect(self.keep_changed_masks)
        a["shortcuts"].triggered.connect(self.show_shortcuts)
        a["prelabel_on_open"].toggled.connect(lambda on: self.settings.set(PRELABEL_ON_OPEN, on))
        for digit in range(10):
            a[f"class_{digit}"].triggered.connect(lambda _checked=False, d=digit: self.ws and
                                                  self.ws.palette.digit_pressed(d))
        for name, action in a.items():
            if not name.startswith("class_"):
                action.triggered.connect(self._end_digits)
        self.brush_spin.valueChanged.connect(self._brush_size_changed)
        self.opacity_slider.valueChanged.connect(self._opacity_changed)

    # --- opening and closing projects --------------------------------------------------------------------------

    def choose_folder(self) -> None:
        start = (self.settings.recent_projects() or [str(Path.home())])[0]
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of face photos or a project", start)
        if folder:
            self.open_folder(folder)

    def _ask_schema(self, folder: Path) -> str | None:
        names = builtin_schema_names()
        default = names.index("celebamask-hq") if "celebamask-hq" in names else 0
        name, ok = QInputDialog.getItem(self, "New project", f"{folder} is not a project yet.\n"
                                        "Label schema for its masks (fixed once the project exists):",
                                        names, default, False)
        return name if ok else None

    def open_folder(self, path: str | os.PathLike, schema: str | None = None) -> bool:
        """Open (or create) the project of a folder; a named image file is shown first."""
        folder, first_image = project_folder_for(path)
        if not folder.is_dir():
            self._error(f"{folder} is neither a folder nor a photo the studio reads (JPEG, PNG, BMP, TIFF or WebP)"
                        if folder.exists() else f"{folder} does not exist")
            self.settings.forget_recent(str(folder))
            self._refresh_recent()
            return False
        if not ProjectStore.is_project(folder) and schema is None:
            schema = self._ask_schema(folder)
            if schema is None:
                return False
        if self.ws is not None and not self._may_stop_jobs(self.ws):
            return False
        try:
            store = ProjectStore.open_or_create(folder, schema)
        except ProjectError as e:
            store = _open_read_only(folder)
            if store is None:
                self._error(str(e))
                return False
        if not self.close_project(asked=True):
            store.close()
            return False
        self.ws = ws = Workspace(store, self.writer, self.jobs, self.autosave_ms, self)
        self._unopened_chosen = False
        self._attach(ws)
        self.settings.add_recent(store.root)
        self._refresh_recent()
        if store.read_only:
            self._opened_read_only(ws, first_image)
            return True
        self.statusBar().showMessage(f"Scanning {store.root} …")
        self.jobs.start(lambda _report, _cancel: store.scan(),
                        on_done=lambda result, w=ws, img=first_image: self._scanned(w, result, img),
                        on_error=self._error)
        return True

    def _set_canvas_only(self, on: bool) -> None:
        """F11: the panels go and the picture takes the window (a small screen, a detailed edge); F11 again brings
        them back as they were."""
        if on:
            self._canvas_only_layout = self.saveState()
            for dock in (self.list_dock, self.palette_dock, self.models_dock):
                dock.hide()
        elif self._canvas_only_layout is not None:
            self.restoreState(self._canvas_only_layout)
            self._canvas_only_layout = None
        if self.ws is not None:
            self.ws.canvas.setFocus()

    def _leave_canvas_only(self) -> None:
        """A panel shown from the View menu ends canvas-only mode where the user left it (nothing is restored)."""
        self._canvas_only_layout = None
        action = self.actions["canvas_only"]
        action.blockSignals(True)
        action.setChecked(False)
        action.blockSignals(False)

    def _hide_panels(self) -> None:
        """The panels have nothing to show without a project; their layout is kept to come back with the next one
        (as it was before canvas-only mode, if that was on)."""
        if self._panel_layout is None:
            self._panel_layout = self._canvas_only_layout or self.saveState()
        self._leave_canvas_only()
        for dock in (self.list_dock, self.palette_dock, self.models_dock):
            dock.hide()
            dock.toggleViewAction().setEnabled(False)

    def _show_panels(self) -> None:
        for dock in (self.list_dock, self.palette_dock, self.models_dock):
            dock.toggleViewAction().setEnabled(True)
        if self._panel_layout is not None:
            self.restoreState(self._panel_layout)
            self._panel_layout = None

    def _size_docks_to_fit(self) -> None:
        """A first start has no remembered layout: the panels open at the width their contents ask for (within a
        quarter of the window each), not at their smallest."""
        if self.ws is None:
            return
        tabbed = max(self.palette_dock.widget().sizeHint().width(), self.models_dock.widget().sizeHint().width())
        wanted = [self.list_dock.widget().sizeHint().width(), tabbed]
        front = self.models_dock if self.models_dock.isVisible() and not self.palette_dock.isVisible() \
            else self.palette_dock  # the Classes and Models panels share one tabbed area
        self.resizeDocks([self.list_dock, front], [min(w + 24, self.width() // 4) for w in wanted],
                         Qt.Orientation.Horizontal)

    def _attach(self, ws: Workspace) -> None:
        for label in (self.zoom_label, self.position_label, self.cursor_label):
            label.setText("")  # the last project's, until this one opens an image
        self.stack.addWidget(ws.canvas)
        self.stack.setCurrentWidget(ws.canvas)
        self._show_panels()
        self.list_dock.setWidget(ws.image_list)
        self.palette_dock.setWidget(ws.palette)
        self.models_dock.setWidget(ws.models)
        if self._fresh_layout:
            self._fresh_layout = False
            QTimer.singleShot(0, self._size_docks_to_fit)  # once the docks have laid out their new contents
        ws.models.prelabel_one_button.clicked.connect(self.prelabel_image)
        install_row_menu(ws.image_list, [self.actions[name] if name else None for name in ROW_MENU_ACTIONS])
        ws.canvas.set_brush_size(self.brush_spin.value())
        ws.canvas.set_opacity(self.opacity_slider.value() / 100)
        ws.canvas.set_outline(self.actions["toggle_outline"].isChecked())
        ws.canvas.set_overlay_visible(self.actions["toggle_overlay"].isChecked())
        ws.palette.set_solo(self.actions["solo_class"].isChecked())
        checked_tool = next((t for n, t in TOOL_ACTIONS.items() if self.actions[n].isChecked()), "brush")
        ws.canvas.set_tool(checked_tool)
        ws.canvas.brush_size_changed.connect(self.brush_spin.setValue)
        ws.canvas.hovered.connect(self._hovered)
        ws.canvas.pick_finished.connect(self._back_from_picker)
        ws.canvas.zoom_changed.connect(
            lambda z: self.zoom_label.setText(f"{z:.0%}" if ws.session.record is not None else ""))
        ws.canvas.prediction_shown.connect(self._prediction_shown)
        ws.canvas.edit_committed.connect(self._end_digits)
        ws.session.modified_changed.connect(lambda _m: self._update_title())
        ws.session.loaded.connect(self._image_loaded)
        ws.image_list.listing_changed.connect(self._update_position)
        ws.session.unloaded.connect(self._image_unloaded)
        ws.session.record_updated.connect(lambda _r: self._update_title())
        ws.session.record_updated.connect(self._say_reviewed)
        ws.session.message.connect(lambda text: self.statusBar().showMessage(text, 4000))
        ws.models.notice.connect(lambda text: self.statusBar().showMessage(text, 8000))
        ws.session.error.connect(self._error)
        ws.session.refused.connect(lambda text: self.statusBar().showMessage(text, 10000))
        ws.session.histories.group.indexChanged.connect(self._update_history_actions)
        ws.session.histories.group.cleanChanged.connect(self._update_history_actions)
        ws.session.histories.group.activeStackChanged.connect(self._update_history_actions)
        ws.canvas.sketch_changed.connect(self._update_history_actions)
        self._update_enabled()
        self._update_title()
        ws.canvas.setFocus()

    @staticmethod
    def _first_to_show(ws: Workspace, first_image: Path | None):
        """The photo named when opening, else the one open when the project was last closed (None if neither)."""
        target = ws.store.find(first_image) if first_image is not None else None
        if target is None:
            last = ws.store.get_setting("studio.last_image")
            target = ws.store.get(last) if isinstance(last, int) else None
        return target

    def _select_image(self, ws: Workspace, record) -> bool:
        """Choose `record` in the list; False when there is none or it is not listed."""
        if record is None:
            return False
        ws.image_list.model.ensure_row(0)
        row = ws.image_list.model.load_until(record.id)  # however deep: the list pages in the rows before it
        return row is not None and ws.image_list.select_row(row)

    def _opened_read_only(self, ws: Workspace, first_image: Path | None) -> None:
        """A project that cannot be written opens as its index last left it: no scan, no details read and no
        pre-labeling (each would write), editing and model actions off, and the reason in the status bar."""
        reason = ws.store.read_only_reason
        ws.canvas.locked = reason
        ws.models.set_read_only(reason)
        ws.image_list.model.reload()
        if not self._select_image(ws, self._first_to_show(ws, first_image)):
            ws.image_list.select_row(0)
        self._update_enabled()
        self._update_title()
        ws.canvas.setFocus()
        self.statusBar().showMessage("Read-only project: it can be looked at and exported, not changed (its folder "
                                     "cannot be written here)", 30000)

    def _scanned(self, ws: Workspace, result, first_image: Path | None) -> None:
        if ws is not self.ws:
            return
        ws.image_list.model.reload()
        notes = "".join(f". {note}" for note in result.notes())
        if first_image is not None and ws.session.record is None and ws.store.find(first_image) is None:
            notes = (f". {first_image.name} is not one of this project's photos: "
                     f"{why_not_indexed(ws.store.root, first_image)}{notes}")
        self.statusBar().showMessage(f"{result.total:,} image{'' if result.total == 1 else 's'} ({result.added:,} new, "
                                     f"{result.removed:,} removed)"
                                     f"{notes}", 15000 if notes else 5000)
        already_open = ws.session.record
        # one chosen while the scan ran is kept: its row may have moved
        target = already_open if already_open is not None else self._first_to_show(ws, first_image)
        selected = self._select_image(ws, target)
        if not selected and already_open is None:
            ws.image_list.select_row(0)
        if result.total == 0:
            where = f"No photos in {ws.store.root}." if not result.projects_inside else \
                f"No photos of this project in {ws.store.root}: its subfolders with photos hold projects of their own."
            ws.canvas.clear(f"{where}\n\nThe studio takes the JPEG, PNG, BMP, TIFF and WebP photos of a folder and "
                            "its subfolders: put some there and open the folder again, or open another one (Ctrl+O).")
        self._update_enabled()
        if already_open is None:
            ws.canvas.setFocus()
        self._details_task = self.jobs.start(
            lambda _report, cancel, store=ws.store: _fill_details(store, cancel),
            on_done=lambda new_errors, ws=ws: self._details_filled(ws, new_errors))
        self._prelabel_new_images(ws, notes)

    def _prelabel_new_images(self, ws: Workspace, notes: str = "") -> None:
        """Opening a folder of photos gives them masks to correct: images no model has labeled yet are pre-labeled
        at once (Models > Pre-label New Images on Opening turns this off), and the status bar says so. A photo
        changed since its prediction counts as new; one that cannot be read does not (nothing would come of it)."""
        waiting = ws.store.count_awaiting_prediction()
        if not waiting or not self.actions["prelabel_on_open"].isChecked():
            return
        try:
            model = find_model(ws.store, None, task_for_schema(ws.store.schema))
        except (ModelNotFoundError, ProjectError) as e:
            self.statusBar().showMessage(f"{waiting:,} images are not pre-labeled: {e}{notes}", 15_000)
            return
        ws.models.start_prelabel_all()
        which = "the starter model" if model.source == "starter" else model.model_id
        self.statusBar().showMessage(f"Pre-labeling {waiting:,} image{'s' if waiting != 1 else ''} with {which} "
                                     f"(progress and cancel in the Models panel){notes}", 15_000 if notes else 10_000)

    def _details_filled(self, ws: Workspace, new_errors: bool = False) -> None:
        """Reading every file may reveal broken photos (their list badges turn to "error") and photos replaced
        since their masks were checked: show them and say so."""
        if ws is not self.ws:
            return
        changed = ws.store.changed_photos()
        if changed or new_errors:
            ws.image_list.reload()
        if not changed or self._kept_changed_in is ws:
            return
        names = ", ".join(r.name for r in changed[:3]) + (" …" if len(changed) > 3 else "")
        self.statusBar().showMessage(f"{len(changed)} photo(s) changed after their masks were checked ({names}): "
                                     "check each mask, then edit it or press R to keep it (Image > Keep Masks of "
                                     "Changed Photos keeps all that still fit)", 20000)

    def _may_stop_jobs(self, ws: Workspace) -> bool:
        """Whether the user lets the project's running retrain and pre-labeling stop (asked only when they run)."""
        if ws.models.retrain.running and not self._ask_stop_retrain():
            return False
        return not ws.models.prelabelling_all or self._ask_stop_prelabel(ws.models.prelabel_status.text())

    def close_project(self, asked: bool = False) -> bool:
        """Close the open project after its last masks are on disk; False (and the project stays open) when the
        user keeps its running jobs (unless `asked` already) or a save failed and the user chose to cancel."""
        ws = self.ws
        if ws is None:
            return True
        if not asked and not self._may_stop_jobs(ws):
            return False
        if ws.session.image_id is not None and not ws.store.read_only:
            image_id = ws.session.image_id
            self.writer.submit(lambda: ws.store.set_setting("studio.last_image", image_id))
        failed = ws.session.flush()
        while failed:
            choice = self._ask_unsaved(ws.store, failed)
            if choice == QMessageBox.StandardButton.Retry:
                ws.session.retry_unsaved()
                failed = ws.session.flush()
            elif choice == QMessageBox.StandardButton.Discard:
                ws.session.discard_unsaved()
                break
            else:
                return False
        if ws.models.retrain.running:
            self._stop_retrain(ws)
        self.ws = None
        self._unopened_chosen = False
        if self._details_task is not None:
            self._details_task.cancel()
        self.jobs.cancel_all()
        self.jobs.wait()
        for dialog in self.findChildren(QDialog):
            if isinstance(dialog, ExportDialog | ImportDialog):
                dialog.abandon()  # they work on the project being closed
        ws.close()
        self.stack.setCurrentWidget(self.welcome)
        self._hide_panels()
        self._update_enabled()
        self._update_title()
        return True

    def _ask_stop_retrain(self) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, APP_TITLE,
                          "A retrain is running. Closing the project stops it; the active model stays as it is "
                          "and the corrections are kept for the next retrain.\n\nStop the retrain and close?",
                          QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("stop_retrain")
        stop = box.addButton("Stop and close", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is stop

    def _ask_stop_prelabel(self, progress: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, APP_TITLE,
                          f"All images are being pre-labeled ({progress}). Closing the project stops that; the "
                          "masks predicted so far are kept, and All images predicts the rest later.\n\n"
                          "Stop pre-labeling and close?", QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("stop_prelabel")
        stop = box.addButton("Stop and close", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is stop

    def _stop_retrain(self, ws: Workspace) -> None:
        """Stop the retrain while the window keeps drawing, behind a busy dialog that takes the input."""
        dialog = QProgressDialog("Stopping the retrain…", "", 0, 0, self)
        dialog.setObjectName("stopping_retrain")
        dialog.setCancelButton(None)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        dialog.show()
        try:
            ws.models.retrain.stop(pump=QApplication.processEvents)
        finally:
            dialog.close()

    def _ask_unsaved(self, store: ProjectStore, failed: dict[int, str],
                     choices: str = "discard the unsaved changes, or cancel to keep the project open",
                     go_on: QMessageBox.StandardButton = QMessageBox.StandardButton.Discard,
                     go_on_text: str | None = None) -> QMessageBox.StandardButton:
        """Retry, go on without the failed masks (`go_on`), or cancel; the save errors are all in this dialog, so
        no separate boxes open over it."""
        names = [self.ws.session.unsaved_name(image_id) if self.ws is not None else f"image {image_id}"
                 for image_id in failed]
        reasons = sorted(set(failed.values()))
        box = QMessageBox(QMessageBox.Icon.Warning, APP_TITLE,
                          f"The corrected mask{'s' if len(names) > 1 else ''} of {', '.join(names[:5])}"
                          f"{', …' if len(names) > 5 else ''} could not be saved: {'; '.join(reasons[:3])}.\n\n"
                          f"Retry once the cause is fixed (disk space, permissions, the project folder put "
                          f"back), or {choices}.",
                          QMessageBox.StandardButton.Retry | go_on | QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("unsaved_masks")
        box.setDefaultButton(QMessageBox.StandardButton.Retry)
        if go_on_text:
            box.button(go_on).setText(go_on_text)
        self._asking_about_unsaved = True
        try:
            return QMessageBox.StandardButton(box.exec())
        finally:
            self._asking_about_unsaved = False

    def _saved_for_export(self, ws: Workspace) -> bool:
        """Every correction is on disk before an export reads the masks, or the user chose to export the masks as
        last saved; False when the export is cancelled."""
        failed = ws.session.flush()
        while failed:
            choice = self._ask_unsaved(ws.store, failed, "export the masks as last saved, or cancel the export",
                                       QMessageBox.StandardButton.Ignore, "Export Anyway")
            if choice == QMessageBox.StandardButton.Retry:
                ws.session.retry_unsaved()
                failed = ws.session.flush()
            else:
                return choice == QMessageBox.StandardButton.Ignore
        return True

    # --- commands ----------------------------------------------------------------------------------------------

    def _set_tool(self, tool: str) -> None:
        if tool in REMEMBERED_TOOLS:
            self.settings.set("tool", tool)
        if self.ws is not None:
            self.ws.canvas.set_tool(tool)

    def _back_from_picker(self) -> None:
        """The picker is a moment's tool: once it has picked a class, the tool painted with last comes back."""
        if self.ws is None or not self.actions["tool_picker"].isChecked():
            return
        tool = self.settings.get("tool", "brush", str)
        name = next((n for n, t in TOOL_ACTIONS.items() if t == tool and t in REMEMBERED_TOOLS), "tool_brush")
        self.actions[name].trigger()
        label = self.ws.palette.current
        self.statusBar().showMessage(
            f"picked {label} {self.ws.store.schema.classes[label]}; back to the {TOOL_ACTIONS[name]}", 4000)

    def _outline_toggled(self, on: bool) -> None:
        self.settings.set("outline", bool(on))
        if self.ws is not None:
            self.ws.canvas.set_outline(on)

    def _focus_canvas(self) -> None:
        if self.ws is not None:
            self.ws.canvas.setFocus()

    def eventFilter(self, watched, event) -> bool:
        """A click on the brush-size arrows gives the keys back to the canvas, so 0-9 choose classes again rather
        than typing a size; clicking into the number itself still lets a size be typed (Enter returns)."""
        if (watched is self.brush_spin and event.type() == QEvent.Type.MouseButtonRelease
                and not self.brush_spin.lineEdit().geometry().contains(event.position().toPoint())):
            QTimer.singleShot(0, self._focus_canvas)
        return super().eventFilter(watched, event)

    def _brush_size_changed(self, size: int) -> None:
        self.settings.set("brush_size", size)
        if self.ws is not None:
            self.ws.canvas.set_brush_size(size)

    def _opacity_changed(self, value: int) -> None:
        self.settings.set("overlay_opacity", value)
        if self.ws is not None:
            self.ws.canvas.set_opacity(value / 100)

    def _end_digits(self, *_args) -> None:
        """Two digits make one class only when typed one after the other: any other key or an edit between them
        ends the first."""
        if self.ws is not None:
            self.ws.palette.end_digits()

    def _prediction_shown(self, on: bool) -> None:
        """The canvas switched by itself (accepting the prediction shows the mask): the action follows."""
        action = self.actions["toggle_prediction"]
        if action.isChecked() != on:
            action.blockSignals(True)
            action.setChecked(on)
            action.blockSignals(False)
            self._update_title()

    def _show_prediction(self, on: bool) -> None:
        if self.ws is None:
            return
        shown = self.ws.canvas.show_prediction(on)
        if on and not shown:
            self.statusBar().showMessage("this image has no prediction yet", 3000)
            self.actions["toggle_prediction"].setChecked(False)
        self._update_title()

    def show_export(self) -> ExportDialog | None:
        if self.ws is None or not self._saved_for_export(self.ws):
            return None
        dialog = ExportDialog(self.ws.store, self.jobs, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def show_shortcuts(self) -> ShortcutsDialog:
        """One reference window: F1 again brings the open one to the front."""
        dialog = self.findChild(ShortcutsDialog)
        if dialog is None:
            dialog = ShortcutsDialog(self)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def show_import(self) -> ImportDialog | None:
        if self.ws is None:
            return None
        self.ws.session.flush()
        dialog = ImportDialog(self.ws.store, self.jobs, self)
        dialog.labels_changed.connect(self._labels_imported)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _labels_imported(self) -> None:
        """Show imported masks: the list is re-read as after a pre-label run, and the open image is read again."""
        ws = self.ws
        if ws is None:
            return
        ws.image_list.reload()
        ws.session.reload()
        ws.retry_chosen()  # an imported mask may open where the one before could not

    def retrain(self) -> None:
        """Ctrl+T: the Models tab comes to the front, so whether the retrain started, or why not, is seen."""
        if self.ws is None:
            return
        self.models_dock.show()
        self.models_dock.raise_()
        self.ws.models.start_retrain()

    def _find_image(self) -> None:
        """Ctrl+F: the keys go to the list's filter; the list is shown first when canvas-only mode or the user hid
        it."""
        if self.ws is None:
            return
        if self.actions["canvas_only"].isChecked():
            self.actions["canvas_only"].setChecked(False)
        self.list_dock.show()
        self.list_dock.raise_()
        self.ws.image_list.focus_search()

    def next_unreviewed(self) -> None:
        """N: the next image that needs a look, including a reviewed one whose photo changed since; past the end
        of the list it goes round to the first one from the top."""
        ws = self.ws
        if ws is None:
            return

        def waiting(record) -> bool:
            return record.status != "reviewed" or record.photo_changed

        if ws.image_list.next_matching(waiting, ws.session.record):
            return
        if ws.image_list.first_matching(waiting, ws.session.record):
            self.statusBar().showMessage("none after this one: back to the first image from the top that is "
                                         "waiting for review", 4000)
        else:
            self.statusBar().showMessage("no other image in the list is waiting for review", 4000)

    def step_image(self, delta: int) -> None:
        """A/D: the previous or next image in the list; at either end the status bar says so."""
        ws = self.ws
        if ws is None:
            return
        before = ws.image_list.view.currentIndex().row()
        if ws.image_list.model.total == 0:
            shown = ws.image_list.status_filter.currentText()
            self.statusBar().showMessage(f"no image in the list: the filter \"{shown}\" matches none" if
                                         ws.image_list.model.status is not None else "no image in the list", 5000)
        elif not ws.image_list.step(delta, ws.session.record) or ws.image_list.view.currentIndex().row() == before:
            self.statusBar().showMessage("this is the last image in the list" if delta > 0
                                         else "this is the first image in the list", 3000)

    def undo(self) -> None:
        """Undo; a review given back by undoing U is confirmed in the status bar once written, as R is."""
        session = self.ws.session if self.ws is not None else None
        if session is None:
            return
        approves = session.undo_stack.top_is_unreview() and not session.sketch_in_progress()
        session.undo()
        if approves and session.record is not None:
            self._review_asked = session.record.id

    def redo(self) -> None:
        """Redo; a review redone is confirmed in the status bar once written, as R is."""
        session = self.ws.session if self.ws is not None else None
        if session is None:
            return
        session.redo()
        if session.undo_stack.top_is_review() and session.record is not None:
            self._review_asked = session.record.id

    def mark_reviewed(self) -> None:
        if self.ws is None or self.ws.session.record is None:
            return
        self._review_asked = self.ws.session.record.id
        self.ws.session.mark_reviewed()

    def unmark_reviewed(self) -> None:
        if self.ws is None:
            return
        self._review_asked = None  # a review still being written is not to be announced after it is taken back
        self.ws.session.unmark_reviewed()

    def review_and_next(self) -> None:
        """Shift+R: R, then N, for going through a folder of good predictions one key per image. A refused review
        stays on the image, so its reason is read where it applies; so does one whose save fails on the writer, which
        is waited for (a mask's write takes milliseconds) before moving on."""
        ws = self.ws
        if ws is None or ws.session.record is None:
            return
        image_id = ws.session.record.id
        errors: list[str] = []
        ws.session.error.connect(errors.append)
        ws.session.refused.connect(errors.append)
        try:
            self.mark_reviewed()
        finally:
            ws.session.error.disconnect(errors.append)
            ws.session.refused.disconnect(errors.append)
        if errors:
            return
        self.writer.wait()
        record = ws.store.get(image_id)
        if image_id in ws.session.unsaved() or record is None or record.status != "reviewed":
            return
        self.next_unreviewed()

    def prelabel_image(self) -> None:
        """Ctrl+L: the open image's edits are saved first (a mask's write takes milliseconds), so the prediction
        lands on an image known to be corrected, which keeps its mask and says so."""
        ws = self.ws
        if ws is None:
            return
        if ws.session.image_id is not None and ws.models.prelabel_task is None:
            ws.session.save()
            self.writer.wait()
        ws.models.start_prelabel_image(ws.session.image_id)

    def prelabel_all(self, redo: bool = False) -> None:
        """Pre-label All from the menu or its key: the Models panel comes to the front, where the progress and the
        summary show (the status bar says when it ends)."""
        if self.ws is None:
            return
        self.models_dock.show()
        self.models_dock.raise_()
        self.ws.models.start_prelabel_all(redo)

    def prelabel_all_again(self) -> None:
        """`prelabel --redo` after asking: a new model or new settings make every prediction worth redoing, and an
        imported prediction (labels from another dataset) is replaced only when the user says so."""
        ws = self.ws
        if ws is None:
            return
        if ws.models.prelabel_task is not None:
            ws.models.start_prelabel_all()  # says that a job is running
            return
        predicted = [r for r in ws.store.images() if r.status == "predicted"]
        if predicted:
            imported = sum(is_imported(r) for r in predicted)
            replaced = (f", replacing the {imported:,} imported from another dataset" if imported else "")
            answer = QMessageBox.question(
                self, APP_TITLE,
                f"Predict all {len(predicted):,} predicted image(s) again with the active model{replaced}?\n\n"
                "Images that were corrected or reviewed are never changed.")
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.prelabel_all(redo=True)

    def keep_changed_masks(self) -> None:
        """Take the checked masks of photos changed since (retouched, re-encoded) as still right, after asking:
        the studio's way to `scan --accept-changed`, for a folder whose photos were all edited at once."""
        ws = self.ws
        if ws is None:
            return
        changed = ws.store.changed_photos()
        if not changed:
            self.statusBar().showMessage("No photo changed since its mask was checked", 5000)
            return
        names = ", ".join(r.name for r in changed[:3]) + (" …" if len(changed) > 3 else "")
        answer = QMessageBox.question(
            self, APP_TITLE,
            f"{len(changed)} photo(s) changed after their masks were checked ({names}).\n\nKeep every mask that "
            "still fits its photo as checked, scaling those whose photo was scaled? Do this only when the pictures "
            "are the same ones (retouched, saved again or resized); a photo of another shape keeps its warning.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        ws.session.flush()
        self._kept_changed_in = ws
        self.statusBar().showMessage(f"Checking {len(changed)} changed photo(s)…")
        self.jobs.start(lambda _report, _cancel: keep_changed_masks(ws.store),
                        lambda result: self._changed_masks_kept(ws, result),
                        lambda message: self._error(message) if ws is self.ws else None)

    def _changed_masks_kept(self, ws: Workspace, result: KeptMasks) -> None:
        if ws is not self.ws:
            return
        ws.image_list.update_records(result.kept)
        scaled = {record.id for record in result.scaled}
        for image_id in scaled:
            ws.image_list.set_unreadable(image_id, None)
        if ws.session.image_id in scaled:
            ws.session.reload()  # the mask on screen was the old size
        elif ws.session.record is None:
            ws.retry_chosen(scaled)  # it could not open with the mask of the old size
        elif ws.session.image_id in {record.id for record in result.kept}:
            ws.session.record = ws.store.get(ws.session.image_id) or ws.session.record
            ws.session.record_updated.emit(ws.session.record)
        text = f"Kept the masks of {len(result.kept)} changed photo(s) as checked"
        if result.scaled:
            text += f" ({len(result.scaled)} scaled to the photo's new size)"
        if result.refused:
            reasons = "; ".join(f"{record.name}: {reason}" for record, reason in result.refused[:3])
            text += f"; {len(result.refused)} not kept ({reasons}{' …' if len(result.refused) > 3 else ''})"
        self.statusBar().showMessage(text, 20000)

    def _say_reviewed(self, record) -> None:
        """R is confirmed once the status is written, not when the key is pressed: a refused or failed review
        says so through the session's error instead."""
        if record.id == self._review_asked and record.status == "reviewed":
            self._review_asked = None
            self.statusBar().showMessage(f"{record.name} marked reviewed", 3000)

    def _update_position(self) -> None:
        """"n / total" of the open image in the list as it is filtered and sorted now; "– / total" when the filter
        hides it."""
        ws = self.ws
        if ws is None:
            self.position_label.setText("")
            return
        if ws.session.image_id is not None:
            row = ws.image_list.model.row_of(ws.session.image_id)
        else:  # a photo that cannot be opened is still the one chosen in the list
            row = _chosen_row(ws)
        where = "–" if row is None else f"{row + 1:,}"
        total = ws.image_list.model.total
        self.position_label.setText(f"{where} / {total:,}" if total else "")

    def _image_loaded(self, record) -> None:
        ws = self.ws
        if ws is None:
            return
        self._unopened_chosen = False
        if self.actions["toggle_prediction"].isChecked():
            self.actions["toggle_prediction"].setChecked(ws.canvas.showing_prediction)
        self._update_position()
        self._update_title()
        self._update_enabled()
        if self._opening_error is not None and self.statusBar().currentMessage() == self._opening_error:
            self.statusBar().clearMessage()  # why the image before could not open: not about this one
        self._opening_error = None
        if record.photo_changed:
            self.statusBar().showMessage(f"{record.name}: {PHOTO_CHANGED_HINT}", 15000)

    def _image_unloaded(self) -> None:
        """The chosen photo cannot be opened: its reason, which follows, goes to the status bar only, so no box
        takes the keys and D/A move on past it."""
        self._open_failed = self._unopened_chosen = True
        self._update_title()
        self._update_enabled()
        self._update_position()
        self.zoom_label.setText("")

    def _hovered(self, info) -> None:
        if info is None or self.ws is None:
            self.cursor_label.setText("")
            return
        x, y, label = info
        classes = self.ws.store.schema.classes
        name = classes[label] if label < len(classes) else f"class {label}"
        source = "prediction" if self.ws.canvas.showing_prediction else "mask"
        self.cursor_label.setText(f"{x}, {y}  ·  {label} {name} ({source})")

    # --- state shown to the user -------------------------------------------------------------------------------

    def _update_title(self) -> None:
        ws = self.ws
        if ws is None:
            self.setWindowTitle(APP_TITLE)
            self.setWindowModified(False)
            return
        record = ws.session.record
        if record is not None:
            first = f"{record.relpath} ({record.status})[*]"
        else:
            row = _chosen_row(ws) if self._unopened_chosen else None
            unopened = ws.image_list.model.record(row) if row is not None else None
            first = f"{unopened.relpath} (cannot be opened)[*]" if unopened is not None else None
        project = f"{ws.store.root.name} (read-only)" if ws.store.read_only else ws.store.root.name
        parts = [first, project, APP_TITLE] if first else [f"{project}[*]", APP_TITLE]
        self.setWindowTitle(" — ".join(parts))
        self.setWindowModified(ws.session.modified)

    def _update_enabled(self) -> None:
        """Editing needs an open image; moving through the list only needs images, so a photo that cannot be
        opened (even the first one shown) can be stepped past."""
        ws = self.ws
        has_project = ws is not None
        has_image = has_project and ws.session.record is not None
        has_images = has_image or (has_project and ws.store.count() > 0)
        for name, action in self.actions.items():
            if name in ("open_folder", "quit", "shortcuts", "prelabel_on_open"):
                continue
            if has_project and ws.store.read_only and name in WRITING_ACTIONS:
                action.setEnabled(False)
            elif name in PROJECT_ACTIONS:
                action.setEnabled(has_project)
            else:
                action.setEnabled(has_images if name in NAVIGATION_ACTIONS else has_image)
        self._update_history_actions()

    def _update_history_actions(self, *_args) -> None:
        """Undo and Redo are offered only when they would do something, so an empty history is seen, not guessed."""
        session = self.ws.session if self.ws is not None else None
        writable = session is not None and not session.store.read_only
        self.actions["undo"].setEnabled(writable and session.can_undo())
        self.actions["redo"].setEnabled(writable and session.can_redo())
        stack = None if session is None or session.sketch_in_progress() else session.undo_stack
        for name, label, step in (("undo", "&Undo", stack and stack.undoText()),
                                  ("redo", "&Redo", stack and stack.redoText())):
            self.actions[name].setText(f"{label} {step}" if step and self.actions[name].isEnabled() else label)

    def _refresh_recent(self) -> None:
        recent = self.settings.recent_projects()
        self.welcome.set_recent(recent)
        self.recent_menu.clear()
        for folder in recent:
            self.recent_menu.addAction(folder, lambda f=folder: self.open_folder(f))
        self.recent_menu.setEnabled(bool(recent))

    def _error(self, message: str) -> None:
        opening, self._open_failed = self._open_failed, False
        self._opening_error = message if opening else None
        self.statusBar().showMessage(message, 20000 if opening else 10000)
        if self.isVisible() and not opening and not self._asking_about_unsaved:
            self._show_warning(message)

    def _show_warning(self, message: str) -> None:
        """One warning box at a time: a failure that repeats (every autosave while the disk is full) updates the
        open box and counts, instead of stacking a new box per stroke."""
        box = self._warning_box
        if box is not None and shiboken6.isValid(box) and box.isVisible():
            self._warning_repeats = self._warning_repeats + 1 if box.property("message") == message else 1
            repeats = f"\n\n(this happened {self._warning_repeats} times)" if self._warning_repeats > 1 else ""
            box.setText(message + repeats)
            box.setProperty("message", message)
            return
        box = QMessageBox(QMessageBox.Icon.Warning, APP_TITLE, message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)  # D/A keep moving through the list
        box.setModal(False)
        box.setProperty("message", message)
        self._warning_box, self._warning_repeats = box, 1
        box.show()

    # --- window events -----------------------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                event.acceptProposedAction()
                self.open_folder(url.toLocalFile())
                return

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.close_project():
            event.ignore()
            return
        self.settings.save_window(self, self._panel_layout)
        self.settings.sync()
        super().closeEvent(event)
