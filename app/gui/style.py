"""The default look: Qt's Fusion style with a calm dark palette, so masks and photos are what stands out."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

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


def apply_style(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    for role, rgb in _COLORS.items():
        palette.setColor(role, QColor(*rgb))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 122, 128))
    app.setPalette(palette)
    app.setStyleSheet("QToolBar { spacing: 3px; padding: 2px; } QDockWidget::title { padding: 4px; }")
