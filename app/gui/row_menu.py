"""The image list's right-click menu: the commands for one image where the annotator is pointing, and the two things
a file list is expected to offer, copying the photo's path and showing it in the system's file manager.

A right-click opens the row first, as file managers select what they act on: the window's commands (mark reviewed,
pre-label this image, ...) act on the open image, so the menu can reuse them as they are, with their shortcuts shown.
"""

from __future__ import annotations

import qtawesome as qta
from faceparse.core.store import ImageRecord
from PySide6.QtCore import QPoint, Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMenu

from .image_list import ImageListPanel


def build_row_menu(panel: ImageListPanel, record: ImageRecord, actions: list[QAction | None]) -> QMenu:
    """`actions`: the window's commands for the open image, None for a separator."""
    menu = QMenu(panel)
    for action in actions:
        if action is None:
            menu.addSeparator()
        else:
            menu.addAction(action)
    if actions:
        menu.addSeparator()
    path = panel.model.store.image_path(record.id)
    copy = menu.addAction(qta.icon("fa5s.copy"), "Copy Path")
    copy.setObjectName("copyPath")
    copy.triggered.connect(lambda: QGuiApplication.clipboard().setText(str(path)))
    show = menu.addAction(qta.icon("fa5s.folder-open"), "Show in Folder")
    show.setObjectName("showInFolder")
    show.triggered.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent))))
    return menu


def install_row_menu(panel: ImageListPanel, actions: list[QAction | None]) -> None:
    view = panel.view
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def show_menu(pos: QPoint) -> None:
        row = view.indexAt(pos).row()
        record = panel.model.record(row) if row >= 0 else None
        if record is None:
            return
        panel.select_row(row, scroll=False)
        menu = build_row_menu(panel, record, actions)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(view.viewport().mapToGlobal(pos))

    view.customContextMenuRequested.connect(show_menu)
