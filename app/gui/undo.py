"""Qt's undo stack over the core's Edit records, with a cap on the memory the history may hold.

An `EditCommand` carries one core `Edit` (a box and its old and new pixels), so a step costs what was painted. The
edit is already applied when the command is pushed (the canvas paints live while the mouse moves), so the first
redo() does nothing. QUndoStack has no byte limit, so `BoundedUndoStack` releases the oldest steps' pixels once the
total passes the cap and marks them obsolete; Qt drops an obsolete step when undo reaches it.

A step may be an acceptance of the model's prediction (`accepts`): it counts as the annotator's decision even when
it changed no pixel, so while it is in effect the mask is a correction, and undoing it takes that back. A
`ReviewCommand` is a step with no pixels at all: marking the image reviewed, which undo takes back like a stroke;
an `UnreviewCommand` is its opposite, U.
"""

from __future__ import annotations

from collections.abc import Callable

from faceparse.core.label_editor import DEFAULT_HISTORY_BYTES, Edit, history_steps_within
from PySide6.QtGui import QUndoCommand, QUndoStack


class EditCommand(QUndoCommand):
    def __init__(self, edit: Edit, apply: Callable[[Edit], None], revert: Callable[[Edit], None],
                 accepts: bool = False):
        super().__init__(edit.name)
        self.edit: Edit | None = edit
        self.accepts = accepts
        self._apply = apply
        self._revert = revert
        self._applied = True

    @property
    def nbytes(self) -> int:
        return 0 if self.edit is None else self.edit.nbytes

    def redo(self) -> None:
        if self._applied or self.edit is None:
            self._applied = False
            return
        self._apply(self.edit)

    def undo(self) -> None:
        if self.edit is not None:
            self._revert(self.edit)

    def release(self) -> None:
        self.edit = None
        self.setObsolete(True)


class _StatusStep(QUndoCommand):
    """A step that changes the image's review status, already written when the step is pushed: the first redo()
    does nothing, later ones `again()`; undo() calls `back()`."""

    def __init__(self, text: str):
        super().__init__(text)
        self._applied = True

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        self.again()

    def again(self) -> None:
        raise NotImplementedError

    def back(self) -> None:
        raise NotImplementedError

    def undo(self) -> None:
        self.back()


class ReviewCommand(_StatusStep):
    """Marking the image reviewed: undo() hands the image back as a correction and a later redo() approves it
    again."""

    def __init__(self, approve: Callable[[ReviewCommand], None], withdraw: Callable[[], None]):
        super().__init__("mark reviewed")
        self._approve = approve
        self._withdraw = withdraw
        self.failed = False
        """Set when the status could not be written: the step then holds nothing to take back."""

    def again(self) -> None:
        self.failed = False
        self._approve(self)

    def back(self) -> None:
        if not self.failed:
            self._withdraw()


class UnreviewCommand(_StatusStep):
    """Taking a review back (U) when it is not the newest step: undo() approves the image again, and a later redo()
    takes the review back again."""

    def __init__(self, withdraw: Callable[[], None], approve: Callable[[], None]):
        super().__init__("unmark reviewed")
        self.again = withdraw
        self.back = approve


def _holds_a_step(command) -> bool:
    """Whether undoing `command` changes anything: an edit whose pixels were released for memory does not, nor
    does a review whose status was never written."""
    if isinstance(command, EditCommand):
        return command.edit is not None
    return not (isinstance(command, ReviewCommand) and command.failed)


class BoundedUndoStack(QUndoStack):
    def __init__(self, max_bytes: int = DEFAULT_HISTORY_BYTES, parent=None):
        super().__init__(parent)
        self.max_bytes = int(max_bytes)

    def _commands(self) -> list[EditCommand]:
        return [c for c in (self.command(i) for i in range(self.count())) if isinstance(c, EditCommand)]

    def _in_effect(self) -> list[QUndoCommand]:
        """The steps not undone, oldest first, of every kind."""
        return [self.command(i) for i in range(self.index())]

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self._commands())

    def push_edit(self, edit: Edit | None, apply: Callable[[Edit], None], revert: Callable[[Edit], None],
                  accepts: bool = False) -> None:
        """Record an edit that is already on the mask, then trim the oldest steps to the memory cap."""
        if edit is None:
            return
        self.push(EditCommand(edit, apply, revert, accepts))
        self.trim(self.max_bytes)

    def trim(self, max_bytes: int) -> None:
        """Release the pixels of the oldest steps in effect until the rest fit in `max_bytes`."""
        live = [c for c in self._in_effect() if isinstance(c, EditCommand) and c.edit is not None]
        keep = history_steps_within([c.nbytes for c in live], max_bytes)
        for command in live[: len(live) - keep]:
            command.release()

    def accepted(self) -> bool:
        """Whether an acceptance of the prediction is among the steps in effect (not undone)."""
        return any(isinstance(c, EditCommand) and c.accepts for c in self._in_effect())

    def holds_edits(self) -> bool:
        """Whether any step, done or undone, holds pixels (not only reviews)."""
        return any(isinstance(self.command(i), EditCommand) for i in range(self.count()))

    def can_undo_edit(self) -> bool:
        return any(_holds_a_step(c) for c in self._in_effect())

    def top_is_review(self) -> bool:
        """Whether the newest step in effect is a review (after a redo: the mask it approved is the saved one)."""
        return self.index() > 0 and isinstance(self.command(self.index() - 1), ReviewCommand)

    def top_is_unreview(self) -> bool:
        """Whether the newest step in effect is U (undoing it approves the image again)."""
        return self.index() > 0 and isinstance(self.command(self.index() - 1), UnreviewCommand)

    def undo_edit(self) -> None:
        """Undo one step that still has its pixels, dropping released steps on the way.

        A dropped step stays on the mask, so no state left in the history is the saved one any more: the stack is
        made unclean, or undoing back to the last save would claim a mask that still holds that step is saved."""
        dropped = False
        while self.canUndo():
            had_pixels = _holds_a_step(self.command(self.index() - 1))
            dropped |= not had_pixels
            self.undo()
            if had_pixels:
                break
        while self.canUndo():
            if _holds_a_step(self.command(self.index() - 1)):
                break
            self.undo()
            dropped = True
        if dropped:
            self.resetClean()
