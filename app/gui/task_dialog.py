"""A dialog that runs one background task at a time, where Close cancels the task while it runs."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QLabel

from .workers import Task, TaskRunner


class TaskDialog(QDialog):
    """Escape and Close cancel a running task instead of hiding the dialog, so no work is left running unseen."""

    task: Task | None = None
    status: QLabel
    runner: TaskRunner
    _abandoned = False

    def _start_task(self, run) -> Task:
        """Run `run` on the runner with the dialog's `_finished`, `_failed` and `_progress`; none of them is called
        once the dialog has been abandoned (its project is closed, a result may still be on its way)."""
        def live(callback):
            return lambda value: None if self._abandoned else callback(value)

        return self.runner.start(run, live(self._finished), live(self._failed), live(self._progress))

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
        self._abandoned = True
        if self.task is not None:
            self.task.cancel()
            self.task = None
        super().reject()
