"""A photo the user names but the scan leaves out gets the scan's reason, in the studio's status bar too; a file
that is neither a photo nor a folder is called what it is."""

import numpy as np
from faceparse.core.export import export_dataset
from faceparse.core.store import ProjectStore, why_not_indexed
from PIL import Image
from test_gui_helpers import make_project, open_window


def photo(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(path)
    return path


def test_each_rule_of_the_scan_is_named(tmp_path):
    root = tmp_path / "faces"
    hidden = photo(root / ".secret.jpg")
    in_hidden = photo(root / ".trash" / "a.jpg")
    photo(root / "other" / "b.jpg")
    with ProjectStore.create(root / "other"):
        pass
    photo(tmp_path / "src" / "c.png")
    with ProjectStore.create(tmp_path / "src") as store:
        store.scan()
        store.save_corrected(store.images()[0].id, np.ones((8, 8), np.uint8))
        export_dataset(store, root / "dataset", "index-png", split=(1, 0, 0))
    exported = next((root / "dataset").rglob("c.png"))
    with ProjectStore.create(root) as store:
        store.scan()
        assert {r.relpath for r in store.images()} == set()
    assert "its name starts with a dot" in why_not_indexed(root, hidden)
    assert "in the folder .trash, whose name starts with a dot" in why_not_indexed(root, in_hidden)
    assert why_not_indexed(root, root / "other" / "b.jpg") == \
        f"it belongs to the project in {root / 'other'}; open that folder to see it"
    assert "is a copy in the export" in why_not_indexed(root, exported)
    assert why_not_indexed(root, root / "gone.jpg") == "it is not there any more"
    assert why_not_indexed(root, tmp_path / "elsewhere.jpg") == f"it is not inside {root}"


def test_opening_a_hidden_photo_says_why_another_one_is_shown(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2)
    photo(folder / ".secret.jpg")
    window = open_window(qtbot, folder, tmp_path)
    window.close_project(asked=True)
    assert window.open_folder(folder / ".secret.jpg")
    qtbot.waitUntil(lambda: window.ws is not None and window.ws.session.record is not None, timeout=10_000)
    message = window.statusBar().currentMessage()
    assert ".secret.jpg is not one of this project's photos: its name starts with a dot" in message


def test_opening_a_file_that_is_no_photo_says_so(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=1)
    window = open_window(qtbot, folder, tmp_path)
    (tmp_path / "notes.txt").write_text("not a face")
    window.isVisible = lambda: False  # no warning box on an offscreen display; the status bar holds the message
    assert not window.open_folder(tmp_path / "notes.txt")
    assert window.statusBar().currentMessage() == (
        f"{tmp_path / 'notes.txt'} is neither a folder nor a photo the studio reads (JPEG, PNG, BMP, TIFF or WebP)")
