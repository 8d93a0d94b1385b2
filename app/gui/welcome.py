"""What the window shows before a project is open: how to open one, and the recent projects."""

from __future__ import annotations

from pathlib import Path

import qtawesome as qta
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

RECENT_WIDTH = 560
RECENT_MIN_WIDTH = 200


class RecentList(QListWidget):
    """The recent projects, RECENT_WIDTH wide where there is room. The page shares its place with the canvas, so
    its minimum is the window's: in a small window the list narrows and the paths elide in the middle."""

    def sizeHint(self) -> QSize:
        return QSize(RECENT_WIDTH, super().sizeHint().height())


class WelcomePage(QWidget):
    open_requested = Signal()
    recent_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        title = QLabel("<h2>FaceParse Studio</h2>"
                       "<p>Open a folder of face photos (it becomes a project) or an existing project.<br>"
                       "You can also drop a folder on this window.</p>", self)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title.setWordWrap(True)
        button = QPushButton(qta.icon("fa5s.folder-open"), "  Open Folder or Project…", self)
        button.setMinimumHeight(36)
        button.clicked.connect(self.open_requested)
        self.recent = RecentList(self)
        self.recent.setObjectName("recentProjects")
        self.recent.setMinimumWidth(RECENT_MIN_WIDTH)
        self.recent.setMaximumWidth(RECENT_WIDTH)
        self.recent.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # the folder's own name stays readable
        self.recent.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.recent.itemActivated.connect(lambda item: self.recent_chosen.emit(item.data(Qt.ItemDataRole.UserRole)))
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(title)
        layout.addWidget(button, 0, Qt.AlignmentFlag.AlignCenter)
        layout.addSpacing(16)
        self.recent_title = QLabel("<b>Recent projects</b>", self)
        layout.addWidget(self.recent_title, 0, Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.recent, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)

    def set_recent(self, folders: list[str]) -> None:
        """Each project as its folder's name, then where it is; the list is as tall as its entries."""
        self.recent.clear()
        for folder in folders:
            path = Path(folder)
            item = QListWidgetItem(qta.icon("fa5s.folder"), f"{path.name}  —  {path.parent}")
            item.setData(Qt.ItemDataRole.UserRole, folder)
            item.setToolTip(folder)
            self.recent.addItem(item)
        if folders:
            rows = sum(self.recent.sizeHintForRow(i) for i in range(self.recent.count()))
            self.recent.setFixedHeight(rows + 2 * self.recent.frameWidth() + 4)
        self.recent_title.setVisible(bool(folders))
        self.recent.setVisible(bool(folders))
