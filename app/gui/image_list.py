"""The image list: a paged model over the project index, a compact row painter and the filter/sort bar.

It must stay fast with 100,000 images, so the model holds only the pages the user has scrolled to (loaded through
`store.images(limit, after=last record)` by Qt's fetchMore), every row has the same height (the view then
measures nothing), and thumbnails are requested only for rows being painted. A row whose status changes is updated
in place; it is not moved or hidden until the user changes the filter, so the list never jumps under the cursor.
"""

from __future__ import annotations

from dataclasses import replace

from faceparse.core.store import NEEDS_ATTENTION, ORDERINGS, STATUSES, ImageRecord, ProjectStore
from faceparse.core.uncertainty import uncertainty_words
from PySide6.QtCore import (
    QAbstractListModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QRectF,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from .combos import shrinkable
from .thumbnail_loader import ThumbnailLoader

PAGE_SIZE = 500
ROW_HEIGHT = 64
THUMB_SIDE = 56
SEARCH_DELAY_MS = 250
"""The pause in typing after which the list is filtered (each filtering reads the index again)."""
RECORD_ROLE = Qt.ItemDataRole.UserRole + 1
STATUS_COLORS = {"new": QColor(120, 124, 130), "predicted": QColor(52, 120, 200),
                 "corrected": QColor(214, 140, 30), "reviewed": QColor(46, 160, 90)}
SELECTED_BADGE_OUTLINE = QColor(255, 255, 255, 230)
ORDER_TITLES = {"name": "Name", "uncertainty": "Most uncertain first", "effort": "Most corrected first"}
PHOTO_CHANGED_HINT = "the photo changed after its mask was checked: check the mask, then edit it or press R to keep it"


def badge_for(record: ImageRecord) -> tuple[str, QColor]:
    """The word and colour under a thumbnail: a problem before the status, since it is what needs doing."""
    if record.error:
        return "error", QColor(190, 60, 60)
    if record.photo_changed:
        return "photo changed", QColor(170, 70, 160)
    return record.status, STATUS_COLORS.get(record.status, QColor(128, 128, 128))


class ImageListModel(QAbstractListModel):
    def __init__(self, store: ProjectStore, thumbnails: ThumbnailLoader, parent=None):
        super().__init__(parent)
        self.store = store
        self.thumbnails = thumbnails
        self.status: str | None = None
        self.order_by = "name"
        self.search = ""
        """Only photos whose path holds this text (any case); empty: all."""
        self._rows: list[ImageRecord] = []
        self._row_of: dict[int, int] = {}
        self._total = 0
        self._cursor: ImageRecord | None = None
        self._exhausted = True
        self._unreadable: dict[int, str] = {}
        thumbnails.ready.connect(self._thumbnail_ready)
        self.reload()

    def set_query(self, status: str | None, order_by: str) -> None:
        if status is not None and status not in (*STATUSES, NEEDS_ATTENTION):
            raise ValueError(f"unknown status {status!r}")
        if order_by not in ORDERINGS:
            raise ValueError(f"unknown ordering {order_by!r}")
        self.status, self.order_by = status, order_by
        self.reload()

    def set_search(self, text: str) -> None:
        self.search = text.strip()
        self.reload()

    def _listing(self, **kwargs) -> list[ImageRecord]:
        return self.store.images(self.status, self.order_by, path_contains=self.search or None, **kwargs)

    def reload(self) -> None:
        self.beginResetModel()
        self._total = self.store.count(self.status, self.search or None)
        self._rows = self._listing(limit=PAGE_SIZE)
        self._row_of = {record.id: i for i, record in enumerate(self._rows)}
        self._cursor = self._rows[-1] if self._rows else None
        self._exhausted = len(self._rows) < PAGE_SIZE
        self.endResetModel()

    @property
    def total(self) -> int:
        return self._total

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> bool:
        return not parent.isValid() and not self._exhausted

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> None:
        """The next page after the last record as it was loaded; a row already shown (its score changed and moved
        it later) is not shown twice."""
        if parent.isValid() or self._exhausted:
            return
        records: list[ImageRecord] = []
        while not records and not self._exhausted:
            page = self._listing(limit=PAGE_SIZE, after=self._cursor)
            self._exhausted = len(page) < PAGE_SIZE
            if page:
                self._cursor = page[-1]
            records = [r for r in page if r.id not in self._row_of]
        if not records:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(records) - 1)
        for i, record in enumerate(records, first):
            self._row_of[record.id] = i
        self._rows.extend(records)
        self.endInsertRows()

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        record = self.record(index.row())
        if role == Qt.ItemDataRole.DisplayRole:
            return record.name
        if role == RECORD_ROLE:
            return record
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.get(record)
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [record.relpath, f"status: {record.status}"]
            if record.width:
                lines.append(f"{record.width} x {record.height}")
            if record.uncertainty is not None:
                lines.append(uncertainty_words(record.uncertainty, record.predicted_with))
            if record.effort is not None:
                lines.append(f"correction effort: {record.effort:.1%}")
            if record.error:
                lines.append(f"error: {record.error}")
            if record.photo_changed:
                lines.append(PHOTO_CHANGED_HINT)
            return "\n".join(lines)
        return None

    def record(self, row: int) -> ImageRecord | None:
        if not 0 <= row < len(self._rows):
            return None
        record = self._rows[row]
        problem = self._unreadable.get(record.id)
        return record if problem is None or record.error else replace(record, error=problem)

    def set_unreadable(self, image_id: int, problem: str | None) -> None:
        """Show (or stop showing) that an image's mask could not be read when it was opened: the badge says
        "error" instead of the status the index still holds for a mask nobody can open."""
        if problem is None:
            if self._unreadable.pop(image_id, None) is None:
                return
        else:
            self._unreadable[image_id] = problem
        row = self._row_of.get(image_id)
        if row is not None:
            self.dataChanged.emit(self.index(row), self.index(row))

    def row_of(self, image_id: int) -> int | None:
        return self._row_of.get(image_id)

    def row_around(self, anchor: ImageRecord, delta: int) -> int | None:
        """For an image this listing does not show (the filter hides it): the row just after (`delta` > 0) or just
        before (`delta` < 0) the place it would have in the listing's order; None when there is none."""
        following = self._listing(limit=1, after=anchor)
        if following:
            while self.row_of(following[0].id) is None and self.canFetchMore():
                self.fetchMore()
            row = self.row_of(following[0].id)
            if row is None:
                return None
        else:
            while self.canFetchMore():
                self.fetchMore()
            row = len(self._rows)
        if delta > 0:
            return row if row < len(self._rows) else None
        return row - 1 if row > 0 else None

    def load_until(self, image_id: int) -> int | None:
        """The row of `image_id`, loading pages until it appears; None when this listing does not hold it. The
        filter is checked first so that an image it hides does not cost a walk through every page."""
        row = self.row_of(image_id)
        if row is not None:
            return row
        record = self.store.get(image_id)
        if record is None or (self.status in STATUSES and record.status != self.status) or \
                self.search.lower() not in record.relpath.lower():
            return None
        while row is None and self.canFetchMore():
            self.fetchMore()
            row = self.row_of(image_id)
        return row

    def ensure_row(self, row: int) -> bool:
        """Load pages until `row` exists (for keyboard navigation past the loaded part)."""
        while row >= len(self._rows) and self.canFetchMore():
            self.fetchMore()
        return row < len(self._rows)

    def update_record(self, record: ImageRecord) -> None:
        row = self._row_of.get(record.id)
        if row is None:
            return
        self._rows[row] = record
        index = self.index(row)
        self.dataChanged.emit(index, index)

    def _thumbnail_ready(self, image_id: int) -> None:
        row = self._row_of.get(image_id)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


def row_title(record: ImageRecord, metrics: QFontMetrics, width: int) -> str:
    """The photo's path in the project, cut short from the left when it does not fit: a folder sorted into
    subfolders (one per person, say) often repeats file names, and the subfolder tells `alice/001.jpg` from
    `bob/001.jpg`; the file name itself always stays whole when the row has room for it."""
    if metrics.horizontalAdvance(record.relpath) <= width:
        return record.relpath
    if metrics.horizontalAdvance(record.name) > width:
        return metrics.elidedText(record.name, Qt.TextElideMode.ElideMiddle, width)
    return metrics.elidedText(record.relpath, Qt.TextElideMode.ElideLeft, width)


class ImageRowDelegate(QStyledItemDelegate):
    """Thumbnail, the photo's path and a coloured status badge in one fixed-height row."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        return QSize(200, ROW_HEIGHT)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        record: ImageRecord | None = index.data(RECORD_ROLE)
        if record is None:
            return
        painter.save()
        rect = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(rect, option.palette.color(QPalette.ColorRole.Highlight))
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(rect, option.palette.color(QPalette.ColorRole.AlternateBase))
        thumb_rect = QRect(rect.left() + 4, rect.top() + (rect.height() - THUMB_SIDE) // 2, THUMB_SIDE, THUMB_SIDE)
        image = index.data(Qt.ItemDataRole.DecorationRole)
        painter.fillRect(thumb_rect, QColor(60, 62, 66))
        if image is not None and not image.isNull():
            x = thumb_rect.left() + (THUMB_SIDE - image.width()) // 2
            y = thumb_rect.top() + (THUMB_SIDE - image.height()) // 2
            painter.drawImage(x, y, image)
        text_left = thumb_rect.right() + 8
        text_color = option.palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        painter.setPen(text_color)
        font = QFont(option.font)
        metrics = QFontMetrics(font)
        name_rect = QRect(text_left, rect.top() + 8, rect.right() - text_left - 4, metrics.height())
        painter.setFont(font)
        painter.drawText(name_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         row_title(record, metrics, name_rect.width()))
        self._badge(painter, font, QRect(text_left, name_rect.bottom() + 6, 0, metrics.height() + 2), record,
                    selected)
        painter.restore()

    @staticmethod
    def _badge(painter: QPainter, font: QFont, rect: QRect, record: ImageRecord, selected: bool = False) -> None:
        """On a selected row the badge gets a light outline: the highlight is a blue close to some badge colours
        ("predicted"), which would otherwise melt into it."""
        small = QFont(font)
        small.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
        metrics = QFontMetrics(small)
        text, color = badge_for(record)
        badge = QRect(rect.left(), rect.top(), metrics.horizontalAdvance(text) + 12, metrics.height() + 2)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(SELECTED_BADGE_OUTLINE, 1.5) if selected else Qt.PenStyle.NoPen)
        painter.setBrush(color)
        shape = QRectF(badge).adjusted(0.75, 0.75, -0.75, -0.75) if selected else QRectF(badge)
        painter.drawRoundedRect(shape, shape.height() / 2, shape.height() / 2)
        painter.setPen(QColor(255, 255, 255))
        painter.setFont(small)
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)


class ImageListPanel(QWidget):
    """The list with its status filter and sort order; emits the chosen image's id."""

    image_chosen = Signal(int)
    search_left = Signal()
    """Esc or Enter in the filter: the keys go back to the picture."""
    listing_changed = Signal()
    """The rows were re-read (filter, order or reload) and the open image highlighted again where it now stands:
    a position shown elsewhere ("n / total") is stale."""

    def __init__(self, store: ProjectStore, thumbnails: ThumbnailLoader, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = ImageListModel(store, thumbnails, self)
        self.view = QListView(self)
        self.view.setObjectName("imageList")
        self.view.setModel(self.model)
        self.view.setUniformItemSizes(True)
        self.view.setItemDelegate(ImageRowDelegate(self.view))
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.setMouseTracking(True)
        self.view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.status_filter = QComboBox(self)
        self.status_filter.addItem("All images", None)
        for status in STATUSES:
            self.status_filter.addItem(status.capitalize(), status)
        self.status_filter.addItem("Needs attention", NEEDS_ATTENTION)
        self.status_filter.setItemData(self.status_filter.count() - 1, "Photos that cannot be read, and checked masks "
                                       "whose photo changed since", Qt.ItemDataRole.ToolTipRole)
        self.order = QComboBox(self)
        for key in ORDERINGS:
            self.order.addItem(ORDER_TITLES.get(key, key), key)
        for combo in (self.status_filter, self.order):
            combo.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # choosing with the mouse leaves the keys with the canvas
            shrinkable(combo, 6)  # a narrow dock elides the choice rather than refusing to shrink
        self.search = QLineEdit(self)
        self.search.setObjectName("imageSearch")
        self.search.setPlaceholderText("Filter by name or folder (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("List only the photos whose path holds this text; Esc clears it")
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._search_changed)
        self.search.textChanged.connect(self._search_timer.start)
        self.search.installEventFilter(self)
        self.summary = QLabel(self)
        self.summary.setObjectName("listSummary")
        self.summary.setWordWrap(True)  # the counts take two lines in a narrow dock instead of widening it
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.status_filter, 1)
        bar.addWidget(self.order, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.search)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.summary)
        self.status_filter.currentIndexChanged.connect(self._query_changed)
        self.order.currentIndexChanged.connect(self._query_changed)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        self.model.modelReset.connect(self._update_summary)
        thumbnails.broken.connect(self.update_record)
        self._update_summary()

    def _query_changed(self) -> None:
        self.model.set_query(self.status_filter.currentData(), self.order.currentData())
        self._reselect_open_image()

    def _search_changed(self) -> None:
        if self.search.text().strip() != self.model.search:
            self.model.set_search(self.search.text())
            self._reselect_open_image()

    def apply_search_now(self) -> None:
        """The typed filter without waiting for the pause that ends typing."""
        self._search_timer.stop()
        self._search_changed()

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def eventFilter(self, watched, event) -> bool:
        """Esc in the filter clears it and hands the keys back to the window (the canvas' shortcuts); Enter or
        Down goes to the first photo listed."""
        if watched is self.search and event.type() == QEvent.Type.KeyPress:
            key = event.key()
            if key == Qt.Key.Key_Escape:
                self.search.clear()
                self.apply_search_now()
                self.search_left.emit()
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Down):
                self.apply_search_now()
                if self.model.search and self.model.rowCount():
                    self.select_row(0)
                self.search_left.emit()
                return True
        return super().eventFilter(watched, event)

    def _reselect_open_image(self, scroll: bool = True) -> None:
        """A reset of the model drops the highlight. The open image is highlighted again wherever it now stands,
        pages loaded down to it, so the list keeps showing where the user is even after a filter that hid it is
        lifted or a new order moves it past the first page."""
        row = None if self._open_id is None else self.model.load_until(self._open_id)
        if row is not None:
            self.select_row(row, emit=False, scroll=scroll)
        self.listing_changed.emit()

    def _update_summary(self) -> None:
        counts = self.model.store.counts()
        total = sum(counts.values())
        self.summary.setText(f"{self.model.total:,} shown of {total:,}  ·  " +
                             "  ".join(f"{s} {counts[s]:,}" for s in STATUSES))

    def refresh_summary(self) -> None:
        self._update_summary()

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        record = self.model.record(current.row())
        if record is None:
            return
        self._open_id = record.id
        if not self._quiet:
            self.image_chosen.emit(record.id)

    _quiet = False
    _open_id: int | None = None
    """The image last highlighted, i.e. the one open: remembered while a filter hides it so it can be found again."""

    def current_id(self) -> int | None:
        record = self.model.record(self.view.currentIndex().row())
        return None if record is None else record.id

    def select_row(self, row: int, emit: bool = True, scroll: bool = True) -> bool:
        if row < 0 or not self.model.ensure_row(row):
            return False
        self._quiet = not emit
        try:
            index = self.model.index(row)
            self.view.setCurrentIndex(index)
            if scroll:
                self.view.scrollTo(index)
        finally:
            self._quiet = False
        return True

    def select_id(self, image_id: int, emit: bool = True) -> bool:
        row = self.model.row_of(image_id)
        return row is not None and self.select_row(row, emit)

    def step(self, delta: int, anchor: ImageRecord | None = None) -> bool:
        """Select the row `delta` away from the current one. When the open image (`anchor`) is not listed, the
        step is taken from where it would stand, not from the top."""
        row = self.view.currentIndex().row()
        if row < 0 and anchor is not None:
            listed = self.model.row_of(anchor.id)
            if listed is not None:
                return self.select_row(max(0, listed + delta))
            target = self.model.row_around(anchor, delta)
            return target is not None and self.select_row(target)
        return self.select_row(max(0, row + delta) if row >= 0 else 0)

    def next_matching(self, predicate, anchor: ImageRecord | None = None) -> bool:
        """Select the first row after the current one (or after where `anchor`, the open image, would stand when it
        is not listed) whose record satisfies `predicate`, loading pages as needed."""
        row = self.view.currentIndex().row() + 1
        if row == 0 and anchor is not None:
            listed = self.model.row_of(anchor.id)
            row = listed + 1 if listed is not None else self.model.row_around(anchor, 1)
            if row is None:
                return False
        while self.model.ensure_row(row):
            record = self.model.record(row)
            if record is not None and predicate(record):
                return self.select_row(row)
            row += 1
        return False

    def first_matching(self, predicate, skip: ImageRecord | None = None) -> bool:
        """Select the first row from the top whose record satisfies `predicate`, other than `skip` (the open
        image), stopping at the current row: what N wraps around to when nothing after it is waiting."""
        end = self.view.currentIndex().row()
        row = 0
        while (end < 0 or row < end) and self.model.ensure_row(row):
            record = self.model.record(row)
            if record is not None and predicate(record) and (skip is None or record.id != skip.id):
                return self.select_row(row)
            row += 1
        return False

    def update_record(self, record: ImageRecord) -> None:
        """Show a record's new state. The open image joins a status filter it now matches (it was hidden while it
        did not), so what was just reviewed shows among the reviewed; rows are not dropped when they stop
        matching, so the list does not move under the annotator."""
        self.update_records([record])

    def update_records(self, records: list[ImageRecord]) -> None:
        """`update_record` for many at once, with the counts read once (a whole table's count per row would
        freeze the window for a folder of thousands)."""
        for record in records:
            self.model.update_record(record)
        if any(record.id == self._open_id and self.model.status in STATUSES and record.status == self.model.status
               and self.model.row_of(record.id) is None for record in records):
            self.reload()
            return
        self._update_summary()

    def refresh_visible_rows(self) -> None:
        """Read the rows on screen again (a background job is changing images one by one); the rows keep their
        places, and the counts are read once."""
        view = self.view
        first = view.indexAt(view.viewport().rect().topLeft()).row()
        last = view.indexAt(view.viewport().rect().bottomLeft()).row()
        if first < 0:
            return
        last = self.model.rowCount() - 1 if last < 0 else last
        for row in range(first, last + 1):
            record = self.model.record(row)
            fresh = self.model.store.get(record.id) if record is not None else None
            if fresh is not None and fresh != record:
                self.model.update_record(fresh)
        self._update_summary()

    def set_unreadable(self, image_id: int, problem: str | None) -> None:
        self.model.set_unreadable(image_id, problem)

    def reload(self) -> None:
        """Re-read the index (after a job changed many images), keeping the open image selected and the list
        scrolled where the user left it: the row that was at the top stays at the top when it is still listed."""
        top = self._top_record_id()
        self.model.reload()
        self._update_summary()
        self._reselect_open_image(scroll=top is None)
        row = None if top is None else self.model.load_until(top)
        if row is not None:
            self.view.scrollTo(self.model.index(row), QAbstractItemView.ScrollHint.PositionAtTop)
        elif top is not None and self.view.currentIndex().isValid():
            self.view.scrollTo(self.view.currentIndex())

    def _top_record_id(self) -> int | None:
        record = self.model.record(self.view.indexAt(self.view.viewport().rect().topLeft()).row())
        return None if record is None else record.id
