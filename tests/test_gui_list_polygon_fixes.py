"""The list keeps the open image highlighted across filter and sort changes; a polygon fills exactly what it
outlines."""

import numpy as np
import pytest
from faceparse.app.gui import image_list
from faceparse.core.label_editor import LabelEditor
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import make_project, open_window, viewport_point

LEFT, NONE = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier


def _open_row(qtbot, window, row: int) -> int:
    panel, session = window.ws.image_list, window.ws.session
    assert panel.model.ensure_row(row)
    image_id = panel.model.record(row).id
    panel.select_row(row)
    qtbot.waitUntil(lambda: session.image_id == image_id)
    return image_id


def test_lifting_a_filter_that_hid_the_open_image_highlights_it_again(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=4, size=64), tmp_path)
    panel = window.ws.image_list
    image_id = _open_row(qtbot, window, 2)
    panel.status_filter.setCurrentIndex(panel.status_filter.findData("reviewed"))
    assert panel.view.currentIndex().row() == -1
    panel.status_filter.setCurrentIndex(panel.status_filter.findData(None))
    assert panel.current_id() == image_id and panel.view.currentIndex().row() == 2
    assert window.ws.session.image_id == image_id


def test_a_new_order_finds_the_open_image_beyond_the_first_page(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(image_list, "PAGE_SIZE", 4)
    folder = make_project(tmp_path / "faces", count=11, size=64)
    window = open_window(qtbot, folder, tmp_path)
    panel = window.ws.image_list
    image_id = _open_row(qtbot, window, 9)
    panel.order.setCurrentIndex(panel.order.findData("uncertainty"))
    assert panel.current_id() == image_id
    panel.order.setCurrentIndex(panel.order.findData("name"))
    assert panel.current_id() == image_id and panel.view.currentIndex().row() == 9
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.ws.session.image_id == panel.model.record(10).id)


def test_a_reload_finds_the_open_image_beyond_the_first_page(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(image_list, "PAGE_SIZE", 4)
    window = open_window(qtbot, make_project(tmp_path / "faces", count=11, size=64), tmp_path)
    panel = window.ws.image_list
    image_id = _open_row(qtbot, window, 9)
    with ProjectStore.open(panel.model.store.root) as store:
        store.set_status(panel.model.record(0).id, "reviewed")
    panel.reload()
    assert panel.current_id() == image_id


def test_a_filter_change_announces_the_new_listing_after_highlighting_the_open_image(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=4, size=64), tmp_path)
    panel = window.ws.image_list
    image_id = _open_row(qtbot, window, 2)
    rows_when_told = []
    panel.listing_changed.connect(lambda: rows_when_told.append((panel.model.total, panel.current_id())))
    panel.status_filter.setCurrentIndex(panel.status_filter.findData("reviewed"))
    panel.status_filter.setCurrentIndex(panel.status_filter.findData(None))
    assert rows_when_told == [(0, None), (4, image_id)]


def _filled(points, size=64):
    editor = LabelEditor(np.zeros((size, size), np.uint8), num_classes=2)
    editor.fill_polygon(points, 1)
    return editor.mask.astype(bool)


@pytest.mark.parametrize("first", [9.5, 10.5, 11.5])
def test_an_outline_on_pixel_borders_fills_exactly_the_pixels_inside(first):
    last = first + 10
    filled = _filled([(first, first), (last, first), (last, last), (first, last)])
    expected = np.zeros_like(filled)
    expected[int(first + 0.5):int(last + 0.5), int(first + 0.5):int(last + 0.5)] = True
    assert np.array_equal(filled, expected)


def test_pixel_centres_on_the_outline_are_filled():
    filled = _filled([(20, 10), (30, 20), (20, 30), (10, 20)])
    assert filled[10, 20] and filled[30, 20] and filled[20, 10] and filled[20, 30]
    assert filled.sum() == 2 * 10 * 11 + 1
    assert not filled[10, 19] and not filled[31, 20]


def test_corners_a_mouse_rounding_away_from_pixel_centres_still_take_those_pixels():
    filled = _filled([(11.96, 12.04), (21.03, 11.97), (20.95, 21.02), (12.04, 20.96)])
    ys, xs = np.nonzero(filled)
    assert len(xs) == 100 and (xs.min(), xs.max(), ys.min(), ys.max()) == (12, 21, 12, 21)


def test_a_sliver_with_no_pixel_centre_inside_paints_the_pixels_it_passes():
    filled = _filled([(10.2, 10.2), (30.2, 10.2), (10.2, 10.3)])
    assert filled[10, 10:31].all() and filled.sum() == 21


def polygon_tool_at_4x(qtbot, tmp_path):
    """A one-face project with the polygon tool and class 5 chosen, zoomed in around (20, 20)."""
    window = open_window(qtbot, make_project(tmp_path / "faces", count=1, size=64, predicted=False), tmp_path)
    canvas = window.ws.canvas
    QTest.keyClick(canvas, Qt.Key.Key_P)
    QTest.keyClick(canvas, Qt.Key.Key_5)
    canvas.fit()
    canvas.zoom_by(4.0)
    canvas.centerOn(20, 20)
    return window, canvas


def painted_square(window):
    """(pixel count, (x min, x max, y min, y max)) of class 5 in the mask being edited."""
    ys, xs = np.nonzero(window.ws.session.editor.mask == 5)
    return len(xs), (xs.min(), xs.max(), ys.min(), ys.max())


@pytest.mark.parametrize("corners, bounds", [
    (((11, 11), (21, 11), (21, 21), (11, 21)), (11, 20, 11, 20)),  # on pixel borders: only the pixels inside
    (((12.5, 12.5), (21.5, 12.5), (21.5, 21.5), (12.5, 21.5)), (12, 21, 12, 21)),  # on centres: those pixels too
])
def test_a_clicked_square_fills_exactly_its_hundred_pixels(qtbot, tmp_path, corners, bounds):
    window, canvas = polygon_tool_at_4x(qtbot, tmp_path)
    for x, y in corners:
        QTest.mouseClick(canvas.viewport(), LEFT, NONE, viewport_point(canvas, x, y))
    QTest.keyClick(canvas, Qt.Key.Key_Return)
    assert painted_square(window) == (100, bounds)


def test_a_lasso_dragged_on_pixel_borders_fills_only_its_pixels(qtbot, tmp_path):
    window, canvas = polygon_tool_at_4x(qtbot, tmp_path)
    viewport = canvas.viewport()
    outline = [(11, 11), (16, 11), (21, 11), (21, 16), (21, 21), (16, 21), (11, 21), (11, 16), (11, 11)]
    QTest.mousePress(viewport, LEFT, NONE, viewport_point(canvas, *outline[0]))
    for x, y in outline[1:]:
        QTest.mouseMove(viewport, viewport_point(canvas, x, y))
    QTest.mouseRelease(viewport, LEFT, NONE, viewport_point(canvas, *outline[-1]))
    assert painted_square(window) == (100, (11, 20, 11, 20))
