"""When a save fails the annotator is told which image, why in plain words, and that the edit is kept; Ctrl+S
and a retrain try the failed saves again once the cause is gone; a project folder that went away is named."""

import os

import numpy as np
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import drag, make_project, open_window, viewport_point


def painted_window(qtbot, tmp_path, errors):
    folder = make_project(tmp_path / "faces", count=2, predicted=False)
    window = open_window(qtbot, folder, tmp_path, autosave_ms=60_000)
    window.ws.session.error.connect(errors.append)
    canvas = window.ws.canvas
    QTest.keyClick(canvas, Qt.Key.Key_3)
    drag(canvas, [viewport_point(canvas, x, 20.5) for x in (10.5, 70.5)])
    return folder, window


def fill_the_disk(monkeypatch, store):
    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device", str(store.dir / "masks" / "corrected" / ".1.abc.tmp.png"))

    monkeypatch.setattr(store, "save_corrected", disk_full)


def test_a_failed_save_names_the_image_and_says_the_edit_is_kept(qtbot, tmp_path, monkeypatch):
    errors: list[str] = []
    _, window = painted_window(qtbot, tmp_path, errors)
    session = window.ws.session
    name = session.record.relpath
    fill_the_disk(monkeypatch, window.ws.store)
    session.save()
    session.writer.wait()
    qtbot.waitUntil(lambda: bool(errors))
    assert errors[0] == (f"could not save the mask of {name}: the disk is full. The edit is kept: it is saved again "
                         "when you save (Ctrl+S) or close the studio")
    assert "Errno" not in errors[0] and ".tmp" not in errors[0]
    monkeypatch.undo()
    assert session.flush() == {}


def test_ctrl_s_on_another_image_saves_the_one_that_failed(qtbot, tmp_path, monkeypatch):
    errors: list[str] = []
    folder, window = painted_window(qtbot, tmp_path, errors)
    session = window.ws.session
    failed_id, painted = session.image_id, session.editor.mask.copy()
    fill_the_disk(monkeypatch, window.ws.store)
    QTest.keyClick(window.ws.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: session.image_id != failed_id and bool(session.unsaved()))
    monkeypatch.undo()
    window.actions["save"].trigger()  # Ctrl+S (the failure's box may hold the keyboard on an offscreen display)
    session.writer.wait()
    qtbot.waitUntil(lambda: not session.unsaved())
    with ProjectStore.open(folder) as store:
        assert np.array_equal(store.corrected_mask(failed_id), painted)
        assert store.get(failed_id).status == "corrected"


def test_a_retrain_saves_what_failed_before_once_the_disk_has_room(qtbot, tmp_path, monkeypatch):
    errors: list[str] = []
    folder, window = painted_window(qtbot, tmp_path, errors)
    session = window.ws.session
    failed_id = session.image_id
    fill_the_disk(monkeypatch, window.ws.store)
    session.save()
    session.writer.wait()
    qtbot.waitUntil(lambda: bool(session.unsaved()))
    assert window.ws.models._edits_saved() is False
    assert f"the corrected mask of {session.record.relpath} could not be saved" in \
        window.ws.models.retrain_phase.text()
    monkeypatch.undo()
    assert window.ws.models._edits_saved() is True
    with ProjectStore.open(folder) as store:
        assert store.corrected_mask(failed_id) is not None


def test_a_project_folder_that_went_away_is_named(qtbot, tmp_path):
    errors: list[str] = []
    folder, window = painted_window(qtbot, tmp_path, errors)
    session = window.ws.session
    os.rename(folder, tmp_path / "renamed")
    session.save()
    session.writer.wait()
    qtbot.waitUntil(lambda: bool(errors))
    assert f"the project folder {folder} is no longer there: put it back, then save again" in errors[0]
    os.rename(tmp_path / "renamed", folder)
    session.discard_unsaved()


def test_shift_r_stays_on_an_image_whose_review_could_not_be_saved(qtbot, tmp_path, monkeypatch):
    errors: list[str] = []
    folder, window = painted_window(qtbot, tmp_path, errors)
    session = window.ws.session
    failed_id, name = session.image_id, session.record.relpath
    fill_the_disk(monkeypatch, window.ws.store)
    window.actions["review_and_next"].trigger()  # Shift+R
    qtbot.waitUntil(lambda: any("was not marked reviewed" in e for e in errors))
    assert session.image_id == failed_id
    assert any(name in e for e in errors)
    assert any("The approval is kept with the mask" in e for e in errors)
    monkeypatch.undo()
    assert session.flush() == {}  # the disk has room again: the mask and its approval are saved
    qtbot.waitUntil(lambda: session.record.status == "reviewed")
    with ProjectStore.open(folder) as store:
        assert store.get(failed_id).status == "reviewed"


def test_an_edit_after_a_failed_review_saves_the_mask_but_not_the_review(qtbot, tmp_path, monkeypatch):
    errors: list[str] = []
    folder, window = painted_window(qtbot, tmp_path, errors)
    session, canvas = window.ws.session, window.ws.canvas
    failed_id = session.image_id
    fill_the_disk(monkeypatch, window.ws.store)
    window.actions["mark_reviewed"].trigger()
    qtbot.waitUntil(lambda: any("was not marked reviewed" in e for e in errors))
    monkeypatch.undo()
    drag(canvas, [viewport_point(canvas, x, 40.5) for x in (10.5, 70.5)])  # the approved mask is not this one
    edited = session.editor.mask.copy()
    assert session.flush() == {}
    with ProjectStore.open(folder) as store:
        assert store.get(failed_id).status == "corrected"
        assert np.array_equal(store.corrected_mask(failed_id), edited)


def test_shift_r_moves_on_once_the_review_is_saved(qtbot, tmp_path):
    errors: list[str] = []
    folder, window = painted_window(qtbot, tmp_path, errors)
    session = window.ws.session
    reviewed_id = session.image_id
    window.actions["review_and_next"].trigger()
    qtbot.waitUntil(lambda: session.image_id != reviewed_id)
    assert errors == []
    with ProjectStore.open(folder) as store:
        assert store.get(reviewed_id).status == "reviewed"
