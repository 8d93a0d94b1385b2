"""A project database that lost its tables while masks are still kept beside it is refused, never rebuilt: a new
project would tie the old masks to whichever photos got their ids."""

import sqlite3

import numpy as np
import pytest
from faceparse.app.cli import main
from faceparse.core.store import ProjectError, ProjectStore
from PIL import Image


def no_tables(folder) -> bool:
    with sqlite3.connect(folder / ".faceparse" / "project.db") as conn:
        return not conn.execute("SELECT name FROM sqlite_master").fetchall()


@pytest.fixture
def emptied(tmp_path):
    """A scanned project with one corrected mask, whose database was then emptied."""
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((8, 8, 3), 60 * i, np.uint8)).save(folder / f"{i}.png")
    with ProjectStore.create(folder) as store:
        store.scan()
        store.save_corrected(store.find("0.png").id, np.ones((8, 8), np.uint8))
    for extra in ("project.db-wal", "project.db-shm"):
        (folder / ".faceparse" / extra).unlink(missing_ok=True)
    (folder / ".faceparse" / "project.db").write_bytes(b"")
    return folder


def test_opening_or_scanning_a_project_whose_database_lost_its_tables_is_refused(emptied):
    for open_ in (ProjectStore.open, ProjectStore.open_or_create, ProjectStore.create):
        with pytest.raises(ProjectError, match="empty or damaged, and 1 mask and model files are still kept"):
            open_(emptied)
    assert no_tables(emptied)
    assert (emptied / ".faceparse" / "masks" / "corrected" / "1.png").exists()


def test_the_cli_refuses_to_scan_it_and_says_what_to_do(emptied, capsys):
    assert main(["scan", str(emptied), "--schema", "lapa"]) == 2
    err = capsys.readouterr().err
    assert "restore project.db from a backup" in err and "Traceback" not in err
    assert no_tables(emptied)


def test_an_empty_database_without_masks_says_to_scan_again(tmp_path):
    folder = tmp_path / "faces"
    (folder / ".faceparse").mkdir(parents=True)
    (folder / ".faceparse" / "project.db").write_bytes(b"")
    with pytest.raises(ProjectError, match="is empty .*scan the folder to create the project again"):
        ProjectStore.open(folder)


def test_a_file_where_the_project_folder_goes_is_named(tmp_path, capsys):
    folder = tmp_path / "faces"
    folder.mkdir()
    (folder / ".faceparse").write_text("not a folder")
    assert main(["scan", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"{folder / '.faceparse'} is a file" in err and "Errno" not in err
