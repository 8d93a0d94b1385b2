"""What a dialog remembers per project (the last export's format, split and destination; the last import's source):
kept in the project's settings, since the choices belong to the data. Risky choices (replacing things) are never
remembered, so each use asks for them again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faceparse.core.store import ProjectStore
from PySide6.QtWidgets import QComboBox


def recall(store: ProjectStore, dialog: str) -> dict[str, Any]:
    value = store.get_setting(f"studio.{dialog}", {})
    return value if isinstance(value, dict) else {}


def remember(store: ProjectStore, dialog: str, choices: dict[str, Any]) -> None:
    """Keep the choices that worked; a read-only project keeps nothing (its export still went through)."""
    if not store.read_only:
        store.set_setting(f"studio.{dialog}", choices)


def choose(combo: QComboBox, data: Any) -> None:
    """Select the entry holding `data`, if there is one (a remembered choice may no longer exist)."""
    index = combo.findData(data)
    if index >= 0:
        combo.setCurrentIndex(index)


def beside_project(store: ProjectStore, text: str) -> Path:
    """A path typed into a dialog; a relative one is taken from the folder that holds the project, the place the
    dialog suggests, not from wherever the studio was started."""
    path = Path(text).expanduser()
    return path if path.is_absolute() else store.root.parent / path
