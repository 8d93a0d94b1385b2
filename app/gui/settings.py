"""What the studio remembers between runs: window layout, recent projects, brush and view preferences.

Kept in QSettings (per user, per machine) rather than in a project, because these are habits of the person, not
facts about the data. Tests hand in a QSettings on a temporary INI file so they never touch the user's own.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow

MAX_RECENT = 10


class StudioSettings:
    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings if qsettings is not None else QSettings()

    @classmethod
    def at(cls, ini_path: str | os.PathLike) -> StudioSettings:
        return cls(QSettings(os.fspath(ini_path), QSettings.Format.IniFormat))

    def recent_projects(self) -> list[str]:
        value = self.q.value("recent_projects", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or []) if v]

    def add_recent(self, folder: str | os.PathLike) -> None:
        path = str(Path(folder).resolve())
        recent = [p for p in self.recent_projects() if p != path]
        self.q.setValue("recent_projects", [path, *recent][:MAX_RECENT])

    def forget_recent(self, folder: str) -> None:
        self.q.setValue("recent_projects", [p for p in self.recent_projects() if p != folder])

    def get(self, key: str, default, kind: type | None = None):
        value = self.q.value(key, default)
        if value is None:
            return default
        kind = kind or type(default)
        try:
            if kind is bool and isinstance(value, str):
                return value.lower() in ("1", "true", "yes")
            return kind(value)
        except (TypeError, ValueError):
            return default

    def set(self, key: str, value) -> None:
        self.q.setValue(key, value)

    def save_window(self, window: QMainWindow, state: QByteArray | None = None) -> None:
        """`state` is the panel layout to remember when the window's own is not the one to keep."""
        self.q.setValue("window/geometry", window.saveGeometry())
        self.q.setValue("window/state", state if state is not None else window.saveState())

    def has_window_state(self) -> bool:
        state = self.q.value("window/state")
        return isinstance(state, QByteArray) and not state.isEmpty()

    def restore_window(self, window: QMainWindow) -> bool:
        geometry, state = self.q.value("window/geometry"), self.q.value("window/state")
        restored = False
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            restored = window.restoreGeometry(geometry)
        if isinstance(state, QByteArray) and not state.isEmpty():
            window.restoreState(state)
        return restored

    def sync(self) -> None:
        self.q.sync()
