"""The headless editing engine: operations, their undo records, protection and the history's memory cap."""

import numpy as np
import pytest
from faceparse.core.label_editor import (
    Box,
    Edit,
    EditHistory,
    LabelEditor,
    history_steps_within,
    merge_edits,
)


def _distance_grid(h, w, x, y):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.hypot(xx - x, yy - y)


def test_disk_paints_a_round_dab_and_records_only_its_box():
    editor = LabelEditor(np.zeros((200, 300), np.uint8), num_classes=5)
    edit = editor.paint_disk(100, 50, 10, 3)
    dist = _distance_grid(200, 300, 100, 50)
    assert (editor.mask[dist <= 8.5] == 3).all()
    assert (editor.mask[dist >= 11] == 0).all()
    assert edit.box.width <= 22 and edit.box.height <= 22
    assert edit.old.shape == edit.new.shape == (edit.box.height, edit.box.width)
    assert (edit.old == 0).all()
    assert np.array_equal(edit.new, editor.mask[edit.box.slices])


def test_stroke_covers_the_segment_between_points():
    editor = LabelEditor(np.zeros((100, 200), np.uint8), num_classes=3)
    editor.stroke([(20, 50), (180, 50)], 4, 2)
    assert (editor.mask[48:53, 20:181] == 2).all()
    assert (editor.mask[:40] == 0).all() and (editor.mask[60:] == 0).all()


def test_undo_and_redo_restore_exact_pixels():
    rng = np.random.default_rng(0)
    start = rng.integers(0, 4, (64, 64), dtype=np.uint8)
    editor = LabelEditor(start, num_classes=4)
    history = EditHistory(editor)
    history.push(editor.stroke([(5, 5), (60, 40)], 3, 1))
    history.push(editor.flood_fill(0, 63, 2))
    history.push(editor.fill_polygon([(10, 10), (50, 12), (30, 55)], 3))
    after = editor.mask.copy()
    while history.can_undo:
        history.undo()
    assert np.array_equal(editor.mask, start)
    while history.can_redo:
        history.redo()
    assert np.array_equal(editor.mask, after)


def test_editor_does_not_alias_the_callers_array():
    start = np.zeros((10, 10), np.uint8)
    editor = LabelEditor(start, num_classes=2)
    editor.paint_disk(5, 5, 2, 1)
    assert not start.any()


def test_eraser_paints_background():
    editor = LabelEditor(np.full((50, 50), 4, np.uint8), num_classes=5)
    edit = editor.erase([(25, 25)], 5)
    assert editor.mask[25, 25] == 0 and edit.name == "erase"
    assert editor.mask[0, 0] == 4


def test_flood_fill_stays_inside_the_connected_region():
    mask = np.zeros((40, 40), np.uint8)
    mask[:, 20] = 1  # a wall splits the background in two
    editor = LabelEditor(mask, num_classes=3)
    edit = editor.flood_fill(5, 5, 2)
    assert (editor.mask[:, :20] == 2).all()
    assert (editor.mask[:, 20] == 1).all() and (editor.mask[:, 21:] == 0).all()
    assert edit.box == Box(0, 0, 20, 40)


def test_flood_fill_with_the_same_class_changes_nothing():
    editor = LabelEditor(np.ones((8, 8), np.uint8), num_classes=2)
    assert editor.flood_fill(3, 3, 1) is None


def test_polygon_fill_fills_the_inside():
    editor = LabelEditor(np.zeros((100, 100), np.uint8), num_classes=2)
    editor.fill_polygon([(10, 10), (90, 10), (90, 90), (10, 90)], 1)
    assert (editor.mask[10:91, 10:91] == 1).all()
    assert editor.mask[5, 5] == 0 and editor.mask[95, 50] == 0


def test_paint_over_protects_other_classes():
    mask = np.zeros((60, 60), np.uint8)
    mask[:, 30:] = 1  # skin on the right
    editor = LabelEditor(mask, num_classes=4)
    editor.set_paint_over({0})
    editor.paint_disk(30, 30, 15, 3)
    assert (editor.mask[:, 30:] == 1).all()
    assert editor.mask[30, 20] == 3
    assert editor.flood_fill(45, 45, 2) is None
    editor.set_paint_over(None)
    assert editor.flood_fill(45, 45, 2) is not None
    assert (editor.mask[:, 30:] == 2).all()


def test_pick_reads_the_class_and_rejects_outside_points():
    mask = np.zeros((10, 10), np.uint8)
    mask[2, 3] = 7
    editor = LabelEditor(mask, num_classes=8)
    assert editor.pick(3, 2) == 7
    assert editor.pick(-1, 2) is None and editor.pick(3, 10) is None


def test_labels_outside_the_schema_are_refused():
    editor = LabelEditor(np.zeros((10, 10), np.uint8), num_classes=3)
    with pytest.raises(ValueError, match="outside"):
        editor.paint_disk(5, 5, 2, 3)


def test_painting_outside_the_image_is_clipped():
    editor = LabelEditor(np.zeros((20, 20), np.uint8), num_classes=2)
    assert editor.paint_disk(-50, -50, 5, 1) is None
    edit = editor.paint_disk(0, 0, 5, 1)
    assert edit.box.x0 == 0 and edit.box.y0 == 0 and editor.mask[0, 0] == 1


def test_merge_edits_makes_one_step_of_a_stroke():
    editor = LabelEditor(np.zeros((80, 80), np.uint8), num_classes=3)
    dabs = [editor.stroke([(10, 10), (40, 10)], 3, 1), editor.stroke([(40, 10), (40, 70)], 3, 2),
            editor.stroke([(40, 70), (10, 10)], 3, 1)]
    merged = merge_edits(dabs, editor.mask)
    after = editor.mask.copy()
    editor.revert(merged)
    assert not editor.mask.any()
    editor.apply(merged)
    assert np.array_equal(editor.mask, after)


def test_replace_records_only_the_differing_box():
    editor = LabelEditor(np.zeros((100, 100), np.uint8), num_classes=2)
    target = np.zeros((100, 100), np.uint8)
    target[40:45, 60:62] = 1
    edit = editor.replace(target)
    assert edit.box == Box(60, 40, 62, 45)
    assert np.array_equal(editor.mask, target)
    assert editor.replace(target) is None


def test_history_memory_cap_drops_the_oldest_steps():
    editor = LabelEditor(np.zeros((512, 512), np.uint8), num_classes=2)
    history = EditHistory(editor, max_bytes=100_000)
    for i in range(40):
        history.push(editor.paint_disk(20 + 10 * i, 256, 40, i % 2))
    assert history.nbytes <= 100_000
    assert 0 < len(history) < 40
    while history.can_undo:
        history.undo()
    assert history.nbytes <= 100_000


def test_a_4k_brush_stroke_stores_kilobytes_not_megabytes():
    editor = LabelEditor(np.zeros((4096, 4096), np.uint8), num_classes=2)
    edit = editor.stroke([(2000, 2000), (2010, 2005)], 12, 1)
    assert edit.nbytes < 4096


def test_history_steps_within_keeps_the_newest():
    assert history_steps_within([10, 10, 10], 25) == 2
    assert history_steps_within([10, 10, 10], 100) == 3
    assert history_steps_within([500], 10) == 1


def test_edit_counts_changed_pixels():
    old = np.zeros((2, 2), np.uint8)
    new = np.array([[0, 1], [1, 1]], np.uint8)
    assert Edit(Box(0, 0, 2, 2), old, new).changed_pixels() == 3


@pytest.mark.parametrize("size", range(1, 25))
@pytest.mark.parametrize("offset", [0.0, 0.2, 0.5, 0.8])
def test_a_dab_and_a_stroke_are_as_wide_as_the_brush_wherever_in_the_pixel(size, offset):
    click = LabelEditor(np.zeros((80, 80), np.uint8), num_classes=3)
    click.stroke([(40 + offset, 40 + offset)], size / 2, 1)
    drag = LabelEditor(np.zeros((80, 80), np.uint8), num_classes=3)
    drag.stroke([(10 + offset, 40 + offset), (70 + offset, 40 + offset)], size / 2, 1)
    row = int(np.argmax((click.mask == 1).sum(axis=1)))
    column = int(np.argmax((click.mask == 1).sum(axis=0)))
    assert int((click.mask[row] == 1).sum()) == size
    assert int((click.mask[:, column] == 1).sum()) == size
    assert int((drag.mask[:, 40] == 1).sum()) == size


def test_a_long_stroke_paints_what_its_segments_paint():
    rng = np.random.default_rng(1)
    points = [tuple(p) for p in rng.uniform(20, 180, (40, 2))]
    whole = LabelEditor(np.zeros((200, 200), np.uint8), num_classes=3)
    whole.stroke(points, 6, 1)
    pieces = LabelEditor(np.zeros((200, 200), np.uint8), num_classes=3)
    for a, b in zip(points[:-1], points[1:], strict=True):
        pieces.stroke([a, b], 6, 1)
    assert np.array_equal(whole.mask, pieces.mask)


def test_a_stroke_past_the_edge_paints_only_what_it_covers():
    editor = LabelEditor(np.zeros((20, 20), np.uint8), num_classes=3)
    assert editor.stroke([(-6.0, 10.0)], 2, 1) is None
    editor.stroke([(-1.0, 10.0)], 2, 1)
    painted = np.argwhere(editor.mask == 1)
    assert len(painted) == 6 and set(painted[:, 1]) == {0, 1} and set(painted[:, 0]) == {9, 10, 11, 12}
