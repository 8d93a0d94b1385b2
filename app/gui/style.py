"""The default look: Qt's Fusion style with a calm dark palette, so masks and photos are what stands out."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle, QStyleOption, QWidget

_COLORS = {
    QPalette.ColorRole.Window: (45, 47, 51),
    QPalette.ColorRole.WindowText: (222, 224, 228),
    QPalette.ColorRole.Base: (34, 36, 39),
    QPalette.ColorRole.AlternateBase: (54, 57, 62),
    QPalette.ColorRole.ToolTipBase: (250, 250, 235),
    QPalette.ColorRole.ToolTipText: (20, 20, 20),
    QPalette.ColorRole.Text: (222, 224, 228),
    QPalette.ColorRole.Button: (56, 59, 64),
    QPalette.ColorRole.ButtonText: (222, 224, 228),
    QPalette.ColorRole.BrightText: (255, 80, 80),
    QPalette.ColorRole.Highlight: (58, 110, 180),
    QPalette.ColorRole.HighlightedText: (255, 255, 255),
    QPalette.ColorRole.Link: (100, 160, 240),
    QPalette.ColorRole.PlaceholderText: (140, 142, 148),
}

CHECK_FRAME = QColor(150, 153, 160)
CHECK_FRAME_DISABLED = QColor(92, 95, 101)


class DarkFusionStyle(QProxyStyle):
    """Fusion, with check boxes that can be seen on a dark palette. Fusion frames a check box in the window colour
    darkened, nearly the colour of the box itself here, so an unticked box (the palette's Show and Over columns, the
    panels' options) was invisible; the frame is drawn again in a grey that stands out from both."""

    def __init__(self):
        super().__init__("Fusion")

    def drawPrimitive(self, element: QStyle.PrimitiveElement, option: QStyleOption, painter: QPainter,
                      widget: QWidget | None = None) -> None:
        super().drawPrimitive(element, option, painter, widget)
        if element == QStyle.PrimitiveElement.PE_IndicatorCheckBox:
            _frame_check_box(option, painter)


def _frame_check_box(option: QStyleOption, painter: QPainter) -> None:
    enabled = bool(option.state & QStyle.StateFlag.State_Enabled)
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.setPen(QPen(CHECK_FRAME if enabled else CHECK_FRAME_DISABLED, 1))
    painter.drawRect(QRectF(option.rect).adjusted(0, 0, -1, -1))
    painter.restore()


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, rgb in _COLORS.items():
        palette.setColor(role, QColor(*rgb))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 122, 128))
    return palette


def apply_style(app: QApplication) -> None:
    app.setStyle(DarkFusionStyle())
    app.setPalette(dark_palette())
    app.setStyleSheet("QToolBar { spacing: 3px; padding: 2px; } QDockWidget::title { padding: 4px; }")
