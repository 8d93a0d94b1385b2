"""Everything that exists while one project is open: its store, canvas, editing session, list and palette.

The window creates a Workspace when a project opens and disposes of it when another opens or the window closes, so
no widget ever holds a store that has been closed, and a project's schema (which fixes the palette and the overlay
colours) is set once for all of its widgets.
"""

from __future__ import annotations

from faceparse.core.store import ProjectStore
from faceparse.core.thumbnails import ThumbnailCache
from PySide6.QtCore import QObject

from .canvas import Canvas
from .image_cache import PrefetchCache
from .image_list import THUMB_SIDE, ImageListPanel
from .models_panel import ModelsPanel
from .palette_panel import PalettePanel
from .session import AUTOSAVE_MS, AnnotationSession
from .thumbnail_loader import ThumbnailLoader
from .workers import SerialWriter, TaskRunner


class Workspace(QObject):
    def __init__(self, store: ProjectStore, writer: SerialWriter, jobs: TaskRunner, autosave_ms: int = AUTOSAVE_MS,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.store = store
        self.canvas = Canvas(store.schema)
        self.canvas.setObjectName("canvas")
        self.thumbnails = ThumbnailLoader(ThumbnailCache(store), THUMB_SIDE, self)
        self.image_list = ImageListPanel(store, self.thumbnails)
        self.palette = PalettePanel(store.schema)
        self.session = AnnotationSession(store, self.canvas, writer, autosave_ms, parent=self)
        self.readers = TaskRunner(1, self)
        self.session.prefetch = PrefetchCache(store, self.readers, self._photo_broken)
        self.session.loaded.connect(self._prefetch_neighbours)
        self.models = ModelsPanel(store, jobs)
        self.models.save_edits = self.session.flush
        self.models.unsaved_name = self.session.unsaved_name
        self._closed = False
        self.models.predictions_changed.connect(self._predictions_changed)
        self.models.image_predicted.connect(self._image_predicted)
        self.canvas.label = self.palette.current
        self.palette.class_selected.connect(self._class_selected)
        self.palette.hidden_changed.connect(self.canvas.set_hidden_classes)
        self.palette.paint_over_changed.connect(self.session.set_paint_over)
        self.canvas.class_picked.connect(self.palette.select)
        self.image_list.image_chosen.connect(self.session.load)
        self.image_list.search_left.connect(self.canvas.setFocus)
        self.session.record_updated.connect(self.image_list.update_record)
        self.session.mask_unreadable.connect(self.image_list.set_unreadable)
        self.session.loaded.connect(self._image_loaded)
        self.models.predictions_arriving.connect(self._predictions_arriving)

    def _image_loaded(self, record) -> None:
        """The open image's row shows what the editor found (a background job may have predicted it since the list
        was read)."""
        self.image_list.set_unreadable(record.id, None)
        self.image_list.model.update_record(record)

    def _predictions_arriving(self) -> None:
        """New predictions during a run: a list ordered by their scores, or filtered by status, is read again (its
        pages were cut by the old order, so a newly scored image could fall between them and stay unlisted); a
        list by name only redraws its visible rows."""
        if self._closed:
            return
        model = self.image_list.model
        if model.order_by != "name" or model.status is not None:
            self.image_list.reload()
        else:
            self.image_list.refresh_visible_rows()
        self.session.reload_prediction()

    def _predictions_changed(self) -> None:
        if self._closed:
            return
        self.image_list.reload()
        self.session.reload_prediction()
        self.retry_chosen()

    def _image_predicted(self, record) -> None:
        if self._closed:
            return
        self.image_list.update_record(record)
        if record.id == self.session.image_id:
            self.session.reload_prediction()
        elif record.id == self.image_list.current_id():
            self.retry_chosen()

    def retry_chosen(self, among: set[int] | None = None) -> None:
        """Open the image chosen in the list that could not be opened (its list entry says why), now that its
        masks changed: a new prediction or a rescaled mask may fit where the old one did not. `among`: only when
        it is one of these."""
        chosen = self.image_list.current_id()
        if self.session.record is not None or chosen is None or (among is not None and chosen not in among):
            return
        self.image_list.set_unreadable(chosen, None)
        self.session.load(chosen)

    def _photo_broken(self, record) -> None:
        if not self._closed:
            self.image_list.update_record(record)

    def _class_selected(self, label: int) -> None:
        self.canvas.label = label

    def _prefetch_neighbours(self, record) -> None:
        model = self.image_list.model
        row = model.row_of(record.id)
        if row is None or self.session.prefetch is None:
            return
        model.ensure_row(row + 1)
        neighbours = [r.id for r in (model.record(row + 1), model.record(row - 1)) if r is not None]
        self.session.prefetch.prefetch(neighbours)

    def close(self) -> None:
        """Save, wait for writes, stop background readers and close the store; results that arrive later are
        ignored."""
        self._closed = True
        self.models.close_jobs()
        self.session.close()
        self.readers.wait()
        self.thumbnails.stop()
        self.store.close()
        for widget in (self.canvas, self.image_list, self.palette, self.models):
            widget.setParent(None)
            widget.deleteLater()
