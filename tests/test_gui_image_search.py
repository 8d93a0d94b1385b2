"""Finding a photo by name in a large folder: the list's filter (Ctrl+F) keeps the photos whose path holds the text
typed; the keys typed there never reach the canvas' one-letter shortcuts; Enter opens the first match and Esc
brings every photo back."""

import numpy as np
import pytest
from faceparse.core.store import ProjectStore
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from test_gui_helpers import open_window


def _photo(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((48, 48, 3), value, np.uint8)).save(path)


@pytest.fixture
def people(tmp_path):
    folder = tmp_path / "people"
    for i, relpath in enumerate(("Alice/001.png", "Alice/002.png", "bob/001.png", "group_2%.png", "group_20.png")):
        _photo(folder / relpath, 40 * i)
    with ProjectStore.create(folder) as store:
        store.scan()
    return folder


def test_the_index_lists_photos_by_part_of_their_path(people):
    with ProjectStore.open(people) as store:
        def paths(text, **kwargs):
            return [r.relpath for r in store.images(path_contains=text, **kwargs)]

        assert paths("alice") == ["Alice/001.png", "Alice/002.png"]  # any case
        assert paths("001") == ["Alice/001.png", "bob/001.png"]
        assert paths("2%") == ["group_2%.png"]  # % and _ are characters, not wildcards
        assert paths("p_2") == ["group_2%.png", "group_20.png"]
        assert paths("p_%") == []
        assert paths("") == paths(None) and len(paths(None)) == 5
        assert store.count(path_contains="ALICE") == 2 and store.count("new", "bob") == 1
        first = store.images(path_contains="0", limit=1)
        assert [r.relpath for r in store.images(path_contains="0", after=first[0])] == \
            ["Alice/002.png", "bob/001.png", "group_20.png"]


def test_ctrl_f_filters_the_list_and_enter_opens_the_first_match(qtbot, tmp_path, people):
    window = open_window(qtbot, people, tmp_path)
    panel, session = window.ws.image_list, window.ws.session
    window.actions["tool_eraser"].trigger()
    outline = window.actions["toggle_outline"].isChecked()
    opened = session.image_id

    QTest.keyClick(window.ws.canvas, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is panel.search
    QTest.keyClicks(panel.search, "bob")  # b is the brush, o the outline: typed here, they are only letters
    assert panel.search.text() == "bob"
    assert window.actions["toggle_outline"].isChecked() == outline and session.image_id == opened
    assert window.actions["tool_eraser"].isChecked() and not window.actions["tool_brush"].isChecked()
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1, timeout=5_000)
    assert panel.model.record(0).relpath == "bob/001.png"
    assert panel.summary.text().startswith("1 shown of 5")

    QTest.keyClick(panel.search, Qt.Key.Key_Return)
    assert session.record.relpath == "bob/001.png"
    assert QApplication.focusWidget() is window.ws.canvas  # the keys are the picture's again

    window.actions["find_image"].trigger()
    QTest.keyClick(panel.search, Qt.Key.Key_Escape)
    assert panel.search.text() == "" and panel.model.rowCount() == 5
    assert panel.model.row_of(session.image_id) is not None  # the open photo is still highlighted in the full list
    assert QApplication.focusWidget() is window.ws.canvas


def test_a_filter_matching_nothing_says_so_and_keeps_the_open_image(qtbot, tmp_path, people):
    window = open_window(qtbot, people, tmp_path)
    panel, session = window.ws.image_list, window.ws.session
    opened = session.image_id
    window.actions["find_image"].trigger()
    QTest.keyClicks(panel.search, "carol")
    panel.apply_search_now()
    assert panel.model.rowCount() == 0 and panel.summary.text().startswith("0 shown of 5")
    QTest.keyClick(panel.search, Qt.Key.Key_Return)
    assert session.image_id == opened


def test_ctrl_f_brings_the_list_back_from_canvas_only_mode(qtbot, tmp_path, people):
    window = open_window(qtbot, people, tmp_path)
    window.actions["canvas_only"].trigger()
    assert not window.list_dock.isVisible()
    window.actions["find_image"].trigger()
    assert window.list_dock.isVisible() and not window.actions["canvas_only"].isChecked()
    assert QApplication.focusWidget() is window.ws.image_list.search
