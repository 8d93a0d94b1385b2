"""A dialog that runs one background task at a time, where Close cancels the task while it runs."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QLabel

from .workers import Task


class TaskDialog(QDialog):
    """Escape and Close cancel a running task instead of hiding the dialog, so no work is left running unseen."""

    task: Task | None = None
    status: QLabel

    def _close_or_cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.status.setText("Cancelling…")
        else:
            self.reject()

    def reject(self) -> None:
        if self.task is not None:
            self.task.cancel()
            return
        super().reject()

    def abandon(self) -> None:
        """Close now: the project this dialog works on is closing, and its task has been cancelled and waited for."""
        if self.task is not None:
            self.task.cancel()
            self.task = None
        super().reject()
