"""The editing tools: each turns presses, drags and releases (in image pixels) into LabelEditor calls.

A tool never touches pixels itself. It asks the host (the canvas) for the editor, the selected class and the brush
radius, calls the core, and reports back: `host.mask_changed(box)` after every live change so only that box is
repainted, and `host.commit(edit)` once per undo step (a whole brush stroke is one step).
"""

from __future__ import annotations

import math
from typing import Protocol

from faceparse.core.label_editor import Box, Edit, LabelEditor, merge_edits

LASSO_MIN_DRAG = 4.0
"""How far (in screen pixels, whatever the zoom) a press on an empty polygon must move to become a lasso."""
HANDLE_SCREEN_PX = 7.0
"""How near (in screen pixels, whatever the zoom) a press must land to grab a polygon corner."""


class ToolHost(Protocol):
    editor: LabelEditor | None
    label: int
    brush_radius: float
    scale_factor: float  # screen pixels per image pixel

    def mask_changed(self, box: Box) -> None: ...
    def commit(self, edit: Edit | None) -> None: ...
    def pick_class(self, label: int) -> None: ...
    def show_outline_preview(self, points: list[tuple[float, float]] | None) -> None: ...
    def tell(self, text: str) -> None: ...


def _center(x: float, y: float) -> tuple[float, float]:
    """Scene coordinates put pixel i on [i, i+1); the editor's disk centres are pixel indices."""
    return x - 0.5, y - 0.5


class Tool:
    name = "tool"
    shows_brush = False

    def __init__(self, host: ToolHost):
        self.host = host

    def press(self, x: float, y: float) -> None: ...
    def move(self, x: float, y: float) -> None: ...
    def release(self, x: float, y: float) -> None: ...
    def double_click(self, x: float, y: float) -> None: ...
    def finish(self) -> None: ...

    def holds_pixels(self) -> bool:
        """Painted pixels not yet committed as an edit (a stroke whose button is still held)."""
        return False

    def commit_held(self) -> None:
        """Commit what `holds_pixels`, as if the button were released now."""

    def cancel(self) -> None:
        self.host.show_outline_preview(None)


class BrushTool(Tool):
    name = "brush"
    shows_brush = True
    edit_name = "brush"

    def __init__(self, host: ToolHost):
        super().__init__(host)
        self._dabs: list[Edit] = []
        self._last: tuple[float, float] | None = None

    def _label(self) -> int:
        return self.host.label

    def _paint(self, points: list[tuple[float, float]]) -> None:
        editor = self.host.editor
        if editor is None:
            return
        edit = editor.stroke(points, self.host.brush_radius, self._label(), self.edit_name)
        if edit is not None:
            self._dabs.append(edit)
            self.host.mask_changed(edit.box)

    def press(self, x: float, y: float) -> None:
        self._dabs = []
        self._last = _center(x, y)
        self._paint([self._last])

    def move(self, x: float, y: float) -> None:
        if self._last is None:
            return
        point = _center(x, y)
        self._paint([self._last, point])
        self._last = point

    def release(self, x: float, y: float) -> None:
        self.commit_held()

    def holds_pixels(self) -> bool:
        return self._last is not None and bool(self._dabs)

    def commit_held(self) -> None:
        if self._last is None:
            return
        self._last = None
        editor, dabs, self._dabs = self.host.editor, self._dabs, []
        if editor is not None:
            self.host.commit(merge_edits(dabs, editor.mask, self.edit_name))

    def cancel(self) -> None:
        editor, dabs, self._dabs, self._last = self.host.editor, self._dabs, [], None
        if editor is not None and dabs:
            edit = merge_edits(dabs, editor.mask)
            editor.revert(edit)
            self.host.mask_changed(edit.box)


class EraserTool(BrushTool):
    name = "eraser"
    edit_name = "erase"

    def _label(self) -> int:
        return 0


class FillTool(Tool):
    name = "fill"

    def press(self, x: float, y: float) -> None:
        editor = self.host.editor
        if editor is None:
            return
        edit = editor.flood_fill(math.floor(x), math.floor(y), self.host.label)
        if edit is not None:
            self.host.mask_changed(edit.box)
            self.host.commit(edit)


class PickerTool(Tool):
    name = "picker"
    picked = False
    """Whether the last click found a class (a click off the image finds none)."""

    def press(self, x: float, y: float) -> None:
        editor = self.host.editor
        label = None if editor is None else editor.pick(x, y)
        self.picked = label is not None
        if label is not None:
            self.host.pick_class(label)


class PolygonTool(Tool):
    """Clicks add corners (double-click, Enter or a click on the first corner fills); a drag draws a freehand lasso
    that fills on release. Before filling, a corner can be dragged to a new place and Backspace takes the last one
    back, so one misplaced click does not cost the whole outline."""

    name = "polygon"

    def __init__(self, host: ToolHost):
        super().__init__(host)
        self.points: list[tuple[float, float]] = []
        self._pressed_at: tuple[float, float] | None = None
        self._lasso = False
        self._grabbed: int | None = None
        self._moved_corner = False
        self._from_nothing = False

    def _screen_to_image(self, screen_px: float) -> float:
        return screen_px / max(getattr(self.host, "scale_factor", 1.0), 1e-6)

    def _corner_at(self, x: float, y: float) -> int | None:
        if len(self.points) < 2:
            return None
        reach = self._screen_to_image(HANDLE_SCREEN_PX)
        nearest = min(range(len(self.points)), key=lambda i: math.dist(self.points[i], (x, y)))
        return nearest if math.dist(self.points[nearest], (x, y)) <= reach else None

    def press(self, x: float, y: float) -> None:
        self._pressed_at = (x, y)
        self._lasso = False
        self._grabbed = self._corner_at(x, y)
        self._moved_corner = False
        self._from_nothing = not self.points
        if self._from_nothing:
            self.points = [(x, y)]
        self.host.show_outline_preview(self.points + ([] if self._grabbed is not None else [(x, y)]))

    def move(self, x: float, y: float) -> None:
        if self._grabbed is not None and self._pressed_at is not None:
            if self._moved_corner or math.dist(self._pressed_at, (x, y)) > 0.5:
                self._moved_corner = True
                self.points[self._grabbed] = (x, y)
            self.host.show_outline_preview(self.points)
            return
        if self._pressed_at is not None:
            if (not self._lasso and self._from_nothing
                    and math.dist(self._pressed_at, (x, y)) >= self._screen_to_image(LASSO_MIN_DRAG)):
                self._lasso = True
            if self._lasso:
                self.points.append((x, y))
        if self.points:
            self.host.show_outline_preview(self.points + ([] if self._lasso else [(x, y)]))

    def release(self, x: float, y: float) -> None:
        self._pressed_at = None
        grabbed, self._grabbed = self._grabbed, None
        if grabbed is not None:
            if not self._moved_corner and grabbed == 0 and len(self.points) >= 3:
                self.finish()
            else:
                self.host.show_outline_preview(self.points)
            return
        if self._lasso:
            self._lasso = False
            self.finish()
            return
        if self.points and math.dist(self.points[-1], (x, y)) > 0.5:
            self.points.append((x, y))
        self.host.show_outline_preview(self.points)

    def double_click(self, x: float, y: float) -> None:
        self.finish()

    def remove_last_point(self) -> None:
        if self._grabbed is not None:
            return  # the corner being dragged stays until the button is released
        if self.points:
            self.points.pop()
        self.host.show_outline_preview(self.points or None)

    def finish(self) -> None:
        """Fill the outline. With fewer than three corners there is nothing to fill: the corners stay, and the
        status bar says why, so a slip of Enter does not throw them away unseen."""
        editor = self.host.editor
        if editor is not None and 0 < len(self.points) < 3:
            self._grabbed = None
            self.host.show_outline_preview(self.points)
            count = len(self.points)
            self.host.tell(f"a polygon needs at least 3 corners ({count} so far): click more, or press Esc to drop "
                           f"{'it' if count == 1 else 'them'}")
            return
        points, self.points = self.points, []
        self._grabbed = None
        self.host.show_outline_preview(None)
        if editor is None or len(points) < 3:
            return
        edit = editor.fill_polygon([_center(px, py) for px, py in points], self.host.label,
                                   "lasso" if len(points) > 12 else "polygon")
        if edit is not None:
            self.host.mask_changed(edit.box)
            self.host.commit(edit)

    def cancel(self) -> None:
        self.points = []
        self._pressed_at = None
        self._grabbed = None
        super().cancel()


TOOLS: dict[str, type[Tool]] = {t.name: t for t in (BrushTool, EraserTool, FillTool, PolygonTool, PickerTool)}
