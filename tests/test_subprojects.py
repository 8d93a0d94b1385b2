"""A subfolder that holds a project of its own belongs to that project: the scan of a project around it leaves its
photos out, says so, and keeps the masks of photos it indexed there before."""

import shutil

import numpy as np
from faceparse.app.cli import main
from faceparse.core.export import export_dataset
from faceparse.core.store import ProjectStore
from test_export_destination_fixes import face_mask, put_photo


def relpaths(store):
    return sorted(rec.relpath for rec in store.images())


def make_project_of(folder):
    """Turn `folder` into a project the way it happens by hand: a project made elsewhere, moved in."""
    elsewhere = folder.parent.parent / f"elsewhere-{folder.name}"
    elsewhere.mkdir()
    ProjectStore.create(elsewhere).close()
    shutil.move(elsewhere / ".faceparse", folder / ".faceparse")


def test_a_project_around_a_subproject_leaves_its_photos_to_it(tmp_path):
    outer = tmp_path / "P"
    put_photo(outer / "a.png", 1)
    put_photo(outer / "sub" / "s1.png", 2)
    put_photo(outer / "sub" / "deeper" / "s2.png", 3)
    put_photo(outer / "group" / "inner" / "i.png", 4)
    put_photo(outer / "group" / "g.png", 5)
    for folder in (outer / "sub", outer / "group" / "inner"):
        with ProjectStore.create(folder) as inner:
            inner.scan()

    with ProjectStore.create(outer) as store:
        result = store.scan()
        assert relpaths(store) == ["a.png", "group/g.png"]
        assert result.total == 2 and result.skipped == 2
        assert result.projects_inside == ("group/inner", "sub")
    with ProjectStore.open(outer / "sub") as inner:
        assert relpaths(inner) == ["deeper/s2.png", "s1.png"]


def test_the_scan_command_leaves_a_subprojects_photos_out(tmp_path, capsys):
    outer = tmp_path / "P"
    put_photo(outer / "a.png", 1)
    put_photo(outer / "sub" / "s1.png", 2)
    assert main(["scan", str(outer / "sub")]) == 0
    assert main(["scan", str(outer)]) == 0
    out = capsys.readouterr().out
    assert "Scanned 1 image" in out and "Skipped 1 subfolder holding a project of its own (sub)" in out
    with ProjectStore.open(outer) as store:
        assert relpaths(store) == ["a.png"]


def test_photos_indexed_before_their_folder_became_a_project_keep_their_masks(tmp_path):
    outer = tmp_path / "P"
    put_photo(outer / "a.png", 1)
    put_photo(outer / "sub" / "labeled.png", 2)
    put_photo(outer / "sub" / "untouched.png", 3)
    with ProjectStore.create(outer) as store:
        store.scan()
        labeled = store.find("sub/labeled.png")
        store.save_corrected(labeled.id, face_mask())
        store.save_corrected(store.find("a.png").id, face_mask())

        make_project_of(outer / "sub")
        result = store.scan()
        assert result.projects_inside == ("sub",) and result.removed == 2
        assert relpaths(store) == ["a.png"]
        assert [rec.relpath for rec in store.missing_photos()] == ["sub/labeled.png"]
        assert store.find("sub/untouched.png") is None
        assert np.array_equal(store.corrected_mask(labeled.id), face_mask())

        export = export_dataset(store, tmp_path / "out", "index-png", split=(1, 0, 0))
        assert export.count == 1
        assert any(line.startswith("sub/labeled.png: its folder sub holds a project of its own")
                   for line in export.skipped)

        shutil.rmtree(outer / "sub" / ".faceparse")
        result = store.scan()
        assert result.projects_inside == () and relpaths(store) == ["a.png", "sub/labeled.png", "sub/untouched.png"]
        back = store.find("sub/labeled.png")
        assert back.id == labeled.id and back.status == "corrected"
        assert np.array_equal(store.corrected_mask(back.id), face_mask())


def test_project_inside_names_the_subfolder_holding_a_project(tmp_path):
    outer = tmp_path / "P"
    put_photo(outer / "x" / "y" / "z.png", 1)
    put_photo(outer / "top.png", 2)
    make_project_of(outer / "x")
    with ProjectStore.create(outer) as store:
        assert store.project_inside("x/y/z.png") == "x"
        assert store.project_inside("top.png") is None
        assert store.project_inside("other/top.png") is None


def _project_around_a_project(tmp_path):
    """A project P with one photo of its own and a subfolder `sub` that holds a project of its own."""
    outer = tmp_path / "P"
    put_photo(outer / "a.png", 1)
    put_photo(outer / "sub" / "s1.png", 2)
    with ProjectStore.create(outer / "sub") as inner:
        inner.scan()
    ProjectStore.create(outer).close()
    return outer


def test_the_studio_says_which_subfolder_it_left_to_its_own_project(qtbot, tmp_path):
    from test_gui_helpers import open_window

    window = open_window(qtbot, _project_around_a_project(tmp_path), tmp_path)
    qtbot.waitUntil(lambda: "Skipped" in window.statusBar().currentMessage(), timeout=10_000)
    message = window.statusBar().currentMessage()
    assert message.startswith("1 image (1 new, 0 removed). Skipped")
    assert "Skipped 1 subfolder holding a project of its own (sub): its photos belong to that project" in message


def test_the_notes_of_the_scan_stay_in_the_message_that_pre_labeling_on_opening_shows(qtbot, tmp_path):
    from test_gui_helpers import install_model, open_window

    outer = _project_around_a_project(tmp_path)
    install_model(outer)
    window = open_window(qtbot, outer, tmp_path, prelabel_on_open=True)
    message = window.statusBar().currentMessage()
    assert message.startswith("Pre-labeling 1 image with") and "Skipped 1 subfolder holding a project" in message
    qtbot.waitUntil(lambda: window.ws.models.prelabel_task is None, timeout=60_000)
