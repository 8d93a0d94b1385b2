"""The coloured mask overlay: an ARGB image kept in step with the mask one rectangle at a time.

Repainting the whole overlay on every brush dab is what makes label editors lag on large images, so the overlay is
a numpy ARGB32 buffer shared with a QImage (no copies), and `refresh(box)` recolours only the box an edit reports.
Colours come from a 256-entry lookup table (hidden classes and background are transparent); opacity is applied when
painting, so moving the opacity slider recolours nothing. Outline mode keeps only the pixels on a class border.
"""

from __future__ import annotations

import numpy as np
from faceparse.core.label_editor import Box
from faceparse.core.schemas import LabelSchema
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget


class MaskOverlay:
    def __init__(self, schema: LabelSchema):
        self.schema = schema
        self.hidden: set[int] = {0}
        self.outline = False
        self.source: np.ndarray = np.zeros((1, 1), np.uint8)
        self.buffer: np.ndarray = np.zeros((1, 1), np.uint32)
        self.image = QImage()
        self._lut = self._make_lut()

    def _make_lut(self) -> np.ndarray:
        rgb = self.schema.color_lut().astype(np.uint32)
        lut = (0xFF << 24) | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
        lut[list(self.hidden)] = 0
        return lut.astype(np.uint32)

    def set_source(self, mask: np.ndarray) -> None:
        """Show `mask` (the array itself is read on every refresh, so edits to it show after refresh(box))."""
        if mask.shape != self.source.shape:
            self.buffer = np.zeros(mask.shape, np.uint32)
            h, w = mask.shape
            self.image = QImage(self.buffer.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)
        self.source = mask
        self.refresh()

    def set_hidden(self, classes: set[int]) -> None:
        self.hidden = set(classes)
        self._lut = self._make_lut()
        self.refresh()

    def set_outline(self, on: bool) -> None:
        self.outline = bool(on)
        self.refresh()

    @property
    def full(self) -> Box:
        h, w = self.source.shape
        return Box(0, 0, w, h)

    def refresh(self, box: Box | None = None) -> Box:
        """Recolour `box` (the whole mask when None); returns the box actually repainted."""
        h, w = self.source.shape
        box = self.full if box is None else box.grown(1 if self.outline else 0, w, h)
        if box.width <= 0 or box.height <= 0:
            return box
        patch = self.source[box.slices]
        colours = self._lut[patch]
        if self.outline:
            colours[~self._border(box)] = 0
        self.buffer[box.slices] = colours
        return box

    def _border(self, box: Box) -> np.ndarray:
        h, w = self.source.shape
        outer = box.grown(1, w, h)
        padded = np.pad(self.source[outer.slices],
                        ((1 - (box.y0 - outer.y0), 1 - (outer.y1 - box.y1)),
                         (1 - (box.x0 - outer.x0), 1 - (outer.x1 - box.x1))), mode="edge")
        c = padded[1:-1, 1:-1]
        return ((c != padded[:-2, 1:-1]) | (c != padded[2:, 1:-1]) |
                (c != padded[1:-1, :-2]) | (c != padded[1:-1, 2:]))


class OverlayItem(QGraphicsItem):
    """Paints only the exposed part of the overlay image, at the chosen opacity."""

    def __init__(self, overlay: MaskOverlay):
        super().__init__()
        self.overlay = overlay
        self.opacity_value = 0.5
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    def boundingRect(self) -> QRectF:
        h, w = self.overlay.source.shape
        return QRectF(0, 0, w, h)

    def geometry_changed(self) -> None:
        self.prepareGeometryChange()
        self.update()

    def set_opacity(self, value: float) -> None:
        self.opacity_value = float(value)
        self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        image = self.overlay.image
        if image.isNull():
            return
        rect = option.exposedRect.toAlignedRect().intersected(image.rect())
        if rect.isEmpty():
            return
        painter.setOpacity(self.opacity_value)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(QRectF(rect), image, QRectF(rect), Qt.ImageConversionFlag.NoFormatConversion)

    def changed(self, box: Box) -> None:
        self.update(QRectF(box.x0, box.y0, box.width, box.height))
