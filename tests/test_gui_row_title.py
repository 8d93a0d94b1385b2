"""The image list names each photo by its path in the project, so photos of the same name in different subfolders
(one folder per person is a common layout) can be told apart; a narrow list keeps the file name whole."""

from dataclasses import replace

import numpy as np
from faceparse.app.gui.image_list import row_title
from faceparse.core.store import ProjectStore
from PIL import Image
from PySide6.QtGui import QFont, QFontMetrics
from test_gui_helpers import open_window


def _folder(tmp_path):
    folder = tmp_path / "people"
    for person, colour in (("alice", 60), ("bob", 180)):
        (folder / person).mkdir(parents=True)
        Image.fromarray(np.full((48, 48, 3), colour, np.uint8)).save(folder / person / "001.png")
    Image.fromarray(np.full((48, 48, 3), 100, np.uint8)).save(folder / "group.png")
    return folder


def test_rows_of_same_named_photos_say_their_folders(qtbot, tmp_path):
    folder = _folder(tmp_path)
    with ProjectStore.create(folder) as store:
        store.scan()
    window = open_window(qtbot, folder, tmp_path)
    model = window.ws.image_list.model
    metrics = QFontMetrics(window.ws.image_list.view.font())
    titles = [row_title(model.record(row), metrics, 400) for row in range(model.rowCount())]
    assert sorted(titles) == ["alice/001.png", "bob/001.png", "group.png"]
    window.ws.image_list.select_row(titles.index("bob/001.png"))
    qtbot.waitUntil(lambda: window.windowTitle().startswith("bob/001.png ("))


def test_a_narrow_row_cuts_the_folders_first_then_the_name(qtbot, tmp_path):
    folder = _folder(tmp_path)
    with ProjectStore.create(folder) as store:
        store.scan()
        record = next(r for r in store.images() if r.relpath == "alice/001.png")
    long = replace(record, relpath="a_very_long_folder_name/another_folder/portrait_0001.jpg")
    metrics = QFontMetrics(QFont())
    name_width = metrics.horizontalAdvance("portrait_0001.jpg")

    roomy = row_title(long, metrics, metrics.horizontalAdvance(long.relpath))
    assert roomy == long.relpath
    narrow = row_title(long, metrics, name_width + metrics.horizontalAdvance("…/another_folder/"))
    assert narrow.endswith("portrait_0001.jpg") and narrow.startswith("…") and narrow != long.relpath
    tiny = row_title(long, metrics, name_width // 2)
    assert "…" in tiny and metrics.horizontalAdvance(tiny) <= name_width // 2
