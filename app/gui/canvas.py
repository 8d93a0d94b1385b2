"""The canvas: a photo with its mask overlay, zoom and pan, and the active tool driven by the mouse.

Mouse positions become image coordinates and go to the active tool (tools.py), which calls the core editor; the
canvas then recolours and repaints only the box the edit reports. The mask shown is either the editable working
mask or the model's prediction (read-only), so the annotator can compare the two in place.
"""

from __future__ import annotations

import numpy as np
from faceparse.core.label_editor import Box, Edit, LabelEditor
from faceparse.core.schemas import LabelSchema
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QCursor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from .overlay import MaskOverlay, OverlayItem
from .tools import TOOLS, Tool

MIN_SCALE, MAX_SCALE = 0.02, 64.0
MIN_BRUSH, MAX_BRUSH = 1, 512


class Canvas(QGraphicsView):
    hovered = Signal(object)  # (x, y, class or None) in image pixels, or None when outside
    edit_committed = Signal(object)  # an Edit already applied to the working mask
    class_picked = Signal(int)
    pick_finished = Signal()  # the picker's click is over (its button released): time to paint with the class
    brush_size_changed = Signal(int)
    zoom_changed = Signal(float)
    prediction_shown = Signal(bool)  # the overlay switched to (True) or away from (False) the prediction
    message = Signal(str)  # why the mouse did nothing, for the status bar
    sketch_changed = Signal()  # a stroke or an outline was started, extended, finished or dropped

    def __init__(self, schema: LabelSchema, parent: QWidget | None = None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(38, 40, 44))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)

        self.overlay = MaskOverlay(schema)
        self._photo = QGraphicsPixmapItem()
        self._photo.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._overlay_item = OverlayItem(self.overlay)
        self._brush_ring = QGraphicsEllipseItem()
        ring_pen = QPen(QColor(255, 255, 255, 220), 0)
        ring_pen.setCosmetic(True)
        self._brush_ring.setPen(ring_pen)
        self._brush_ring.setVisible(False)
        self._preview = QGraphicsPathItem()
        preview_pen = QPen(QColor(255, 230, 0), 1.5, Qt.PenStyle.DashLine)
        preview_pen.setCosmetic(True)
        self._preview.setPen(preview_pen)
        for z, item in enumerate((self._photo, self._overlay_item, self._preview, self._brush_ring)):
            item.setZValue(z)
            self.scene().addItem(item)

        self.editor: LabelEditor | None = None
        self.prediction: np.ndarray | None = None
        self.showing_prediction = False
        self.label = 1
        self.brush_size = 20
        self.tool: Tool = TOOLS["brush"](self)
        self._tool_active = False
        self._panning_from: QPointF | None = None
        self._panning_button = Qt.MouseButton.NoButton
        self._space_held = False
        self._fitted = True  # keep fitting the image to the window until the user zooms
        self.notice = ""
        self.locked: str | None = None
        """Why the mask cannot be edited (a read-only project), said when a click tries; None where it can."""

    # --- content -------------------------------------------------------------------------------------------------

    @property
    def brush_radius(self) -> float:
        return self.brush_size / 2.0

    @property
    def editable(self) -> bool:
        """A click edits only the working mask, and only while it is on screen: painting a hidden mask would
        change it unseen."""
        return (self.editor is not None and self.locked is None and not self.showing_prediction
                and self._overlay_item.isVisible())

    def set_image(self, photo: QImage, editor: LabelEditor, prediction: np.ndarray | None) -> None:
        """Show a new photo and its working mask; the view keeps its zoom if the size did not change."""
        self.tool.cancel()
        same_size = self.editor is not None and self.editor.mask.shape == editor.mask.shape
        self.editor = editor
        self.prediction = prediction
        self.notice = ""
        if self.showing_prediction and prediction is None:
            self.showing_prediction = False
        self._photo.setPixmap(QPixmap.fromImage(photo))
        self._show_mask()
        self.scene().setSceneRect(QRectF(0, 0, photo.width(), photo.height()))
        if not same_size or self._fitted:
            self.fit()
        self._editable_changed()
        self.refresh_hover()

    def clear(self, notice: str = "") -> None:
        """Show no image; `notice` is written in its place (why the chosen image is not shown)."""
        self.tool.cancel()
        self.editor = None
        self.prediction = None
        self.notice = notice
        self._photo.setPixmap(QPixmap())
        self.overlay.set_source(np.zeros((1, 1), np.uint8))
        self._overlay_item.geometry_changed()
        self._editable_changed()
        self.viewport().update()
        self.hovered.emit(None)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        super().drawForeground(painter, rect)
        if self.editor is not None or not self.notice:
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(QColor(225, 225, 225))
        area = self.viewport().rect().adjusted(40, 40, -40, -40)
        painter.drawText(area, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), self.notice)
        painter.restore()

    def _show_mask(self) -> None:
        source = self.prediction if self.showing_prediction and self.prediction is not None else None
        if source is None and self.editor is not None:
            source = self.editor.mask
        if source is not None:
            self.overlay.set_source(source)
            self._overlay_item.geometry_changed()

    def show_prediction(self, on: bool, cancel_tool: bool = True) -> bool:
        """Switch the overlay to the prediction (read-only) or back; returns whether the prediction is shown.
        `cancel_tool` False only repaints (a new prediction arrived) and leaves a stroke or polygon in progress."""
        if cancel_tool:
            self.tool.commit_held()
            self.tool.cancel()
        was = self.showing_prediction
        self.showing_prediction = bool(on) and self.prediction is not None
        self._show_mask()
        self._editable_changed()
        if was != self.showing_prediction:
            self.prediction_shown.emit(self.showing_prediction)
        self.refresh_hover()
        return self.showing_prediction

    def tool_in_progress(self) -> bool:
        """A stroke whose button is held, or polygon corners not yet closed."""
        return self._tool_active or bool(getattr(self.tool, "points", None))

    def set_hidden_classes(self, classes: set[int]) -> None:
        self.overlay.set_hidden(classes)
        self._overlay_item.update()

    def set_outline(self, on: bool) -> None:
        self.overlay.set_outline(on)
        self._overlay_item.update()

    def set_overlay_visible(self, on: bool) -> None:
        self._overlay_item.setVisible(on)
        self._editable_changed()

    def set_opacity(self, value: float) -> None:
        self._overlay_item.set_opacity(value)

    @property
    def opacity(self) -> float:
        return self._overlay_item.opacity_value

    def set_tool(self, name: str) -> None:
        """A stroke still held is kept (as leaving the image keeps it); an unfinished polygon is dropped."""
        self.tool.commit_held()
        self.tool.cancel()
        self._tool_active = False
        self.tool = TOOLS[name](self)
        self._update_cursor()
        self._update_ring()

    def set_brush_size(self, size: int) -> None:
        size = int(min(MAX_BRUSH, max(MIN_BRUSH, size)))
        if size != self.brush_size:
            self.brush_size = size
            self._update_ring()
            self.brush_size_changed.emit(size)

    # --- host interface for tools ------------------------------------------------------------------------------

    def mask_changed(self, box: Box) -> None:
        if self.showing_prediction:
            return
        self._overlay_item.changed(self.overlay.refresh(box))
        self.refresh_hover()

    def refresh_hover(self) -> None:
        """Report the class under a resting pointer again: an edit, an undo or T changes it without a mouse move."""
        at = self.viewport().mapFromGlobal(QCursor.pos())
        if self.viewport().rect().contains(at):
            self._report_hover(self.image_pos(QPointF(at)))

    def commit(self, edit: Edit | None) -> None:
        if edit is not None:
            self.edit_committed.emit(edit)

    def pick_class(self, label: int) -> None:
        self.class_picked.emit(label)

    def tell(self, text: str) -> None:
        self.message.emit(text)

    def show_outline_preview(self, points: list[tuple[float, float]] | None) -> None:
        path = QPainterPath()
        if points:
            path.moveTo(*points[0])
            for p in points[1:]:
                path.lineTo(*p)
            if len(points) > 2:
                path.closeSubpath()
        self._preview.setPath(path)
        self.sketch_changed.emit()

    # --- view --------------------------------------------------------------------------------------------------

    def fit(self) -> None:
        rect = self.scene().sceneRect()
        self._fitted = True
        if rect.width() > 0 and rect.height() > 0:
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
            self.zoom_changed.emit(self.scale_factor)
            self._update_ring()

    def actual_pixels(self) -> None:
        center = self.mapToScene(self.viewport().rect().center())
        self._fitted = False
        self.resetTransform()
        self.centerOn(center)
        self.zoom_changed.emit(1.0)
        self._update_ring()

    @property
    def scale_factor(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float) -> None:
        """Zoom within MIN_SCALE..MAX_SCALE, widened to the current scale: a photo of a few pixels fitted to the
        window is already past MAX_SCALE, and zooming in must not jump it smaller."""
        current = self.scale_factor
        target = min(max(MAX_SCALE, current), max(min(MIN_SCALE, current), current * factor))
        factor = target / self.scale_factor
        if abs(factor - 1.0) > 1e-6:
            self._fitted = False
            self.scale(factor, factor)
            self.zoom_changed.emit(self.scale_factor)

    def image_pos(self, event_pos) -> QPointF:
        return self.mapToScene(event_pos.toPoint() if hasattr(event_pos, "toPoint") else event_pos)

    def _update_cursor(self) -> None:
        """The brush hides the pointer behind its ring, which is drawn only where a click paints: over a read-only
        prediction or no image, the pointer must stay visible (and say that clicking does nothing)."""
        shape = Qt.CursorShape.CrossCursor
        if self._panning_from is not None:
            shape = Qt.CursorShape.ClosedHandCursor
        elif self._space_held:
            shape = Qt.CursorShape.OpenHandCursor
        elif not self.editable:
            shape = Qt.CursorShape.ForbiddenCursor if self.editor is not None else Qt.CursorShape.ArrowCursor
        elif self.tool.shows_brush:
            shape = Qt.CursorShape.BlankCursor
        self.viewport().setCursor(shape)

    def _editable_changed(self) -> None:
        """Showing the prediction or another image changes what a click does: pointer and ring follow at once,
        not at the next mouse move."""
        self._update_cursor()
        self._update_ring()

    def _update_ring(self, pos: QPointF | None = None) -> None:
        show = self.tool.shows_brush and self.editable and self._panning_from is None and not self._space_held
        center = pos if pos is not None else self._brush_ring.rect().center()
        r = self.brush_radius
        self._brush_ring.setRect(QRectF(center.x() - r, center.y() - r, 2 * r, 2 * r))
        self._brush_ring.setVisible(show and (pos is not None or self._brush_ring.isVisible()))

    # --- events ------------------------------------------------------------------------------------------------

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y()
        if not delta:
            return
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            step = max(1, round(self.brush_size * 0.15))
            self.set_brush_size(self.brush_size + (step if delta > 0 else -step))
        else:
            self.zoom_by(1.0015 ** delta)
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton or (
                event.button() == Qt.MouseButton.LeftButton and self._space_held):
            self._panning_from = event.position()
            self._panning_button = event.button()
            self._update_cursor()
            return
        if event.button() == Qt.MouseButton.LeftButton and self.locked is not None and self.editor is not None:
            self.message.emit(self.locked)
            return
        if event.button() == Qt.MouseButton.LeftButton and self.editable:
            pos = self.image_pos(event.position())
            self._tool_active = True
            self.tool.press(pos.x(), pos.y())
            self.sketch_changed.emit()
            return
        if (event.button() == Qt.MouseButton.LeftButton and self.showing_prediction and self.prediction is not None
                and isinstance(self.tool, TOOLS["picker"])):
            pos = self.image_pos(event.position())
            x, y = int(np.floor(pos.x())), int(np.floor(pos.y()))
            if 0 <= y < self.prediction.shape[0] and 0 <= x < self.prediction.shape[1]:
                self.pick_class(int(self.prediction[y, x]))  # picking reads the prediction and changes nothing
                self.pick_finished.emit()
            return
        if event.button() == Qt.MouseButton.LeftButton and self.showing_prediction and self.editor is not None:
            self.message.emit("the prediction is read-only: press T to edit the working mask, or Ctrl+Enter to "
                              "accept the prediction")
            return
        if event.button() == Qt.MouseButton.LeftButton and self.editor is not None \
                and not self._overlay_item.isVisible():
            self.message.emit("the mask is hidden: press M to show it before editing")
            return
        if event.button() == Qt.MouseButton.RightButton and isinstance(self.tool, TOOLS["polygon"]):
            self.tool.finish()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._panning_from is not None:
            delta = event.position() - self._panning_from
            self._panning_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
            return
        pos = self.image_pos(event.position())
        self._update_ring(pos)
        if self._tool_active or isinstance(self.tool, TOOLS["polygon"]):
            self.tool.move(pos.x(), pos.y())
        self._report_hover(pos)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        """A pan ends with the button that started it; the left button ends a stroke even while the middle
        button pans, so a stroke can never stay down with no button held."""
        if self._panning_from is not None and event.button() == self._panning_button:
            self._panning_from = None
            self._update_cursor()
            return
        if event.button() == Qt.MouseButton.LeftButton and self._tool_active:
            self._tool_active = False
            pos = self.image_pos(event.position())
            self.tool.release(pos.x(), pos.y())
            self.sketch_changed.emit()
            if isinstance(self.tool, TOOLS["picker"]) and self.tool.picked:
                self.pick_finished.emit()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        """A double-click closes a polygon; for every other tool the second click is a click like the first (Qt
        sends it as a double-click instead of a press, so quick taps of the brush would otherwise be lost)."""
        if event.button() == Qt.MouseButton.LeftButton and self.editable and not self._space_held:
            if isinstance(self.tool, TOOLS["polygon"]):
                pos = self.image_pos(event.position())
                self.tool.double_click(pos.x(), pos.y())
            else:
                self.mousePressEvent(event)
            return
        super().mouseDoubleClickEvent(event)

    def leaveEvent(self, event) -> None:
        self._brush_ring.setVisible(False)
        self.hovered.emit(None)
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = True
            self._brush_ring.setVisible(False)
            self._update_cursor()
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and isinstance(self.tool, TOOLS["polygon"]):
            self.tool.finish()
            return
        if key == Qt.Key.Key_Backspace and isinstance(self.tool, TOOLS["polygon"]) and self.tool.points:
            self.tool.remove_last_point()
            return
        if key == Qt.Key.Key_Escape:
            self.tool.cancel()
            self._tool_active = False
            return
        super().keyPressEvent(event)

    def focusOutEvent(self, event) -> None:
        """A Space released while another widget had the keys never reaches the canvas: stop panning here."""
        if self._space_held or self._panning_from is not None:
            self._space_held = False
            self._panning_from = None
            self._update_cursor()
        super().focusOutEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            self._panning_from = None
            self._update_cursor()
            return
        super().keyReleaseEvent(event)

    def _report_hover(self, pos: QPointF) -> None:
        x, y = int(np.floor(pos.x())), int(np.floor(pos.y()))
        mask = self.overlay.source
        if self.editor is None or not (0 <= x < mask.shape[1] and 0 <= y < mask.shape[0]):
            self.hovered.emit(None)
            return
        self.hovered.emit((x, y, int(mask[y, x])))
