"""The list's orders by uncertainty and by effort, and its counts by status, have indexes, in new projects and in
projects made before the indexes existed (added when such a project is opened for writing)."""

import sqlite3

from faceparse.core.store import ProjectStore
from PIL import Image

INDEXES = {"images_by_uncertainty", "images_by_effort", "images_by_status"}


def _indexes(db_path):
    with sqlite3.connect(db_path) as c:
        return {row[0] for row in c.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def _plan(db_path, sql):
    with sqlite3.connect(db_path) as c:
        return " ".join(str(row[-1]) for row in c.execute("EXPLAIN QUERY PLAN " + sql))


def test_new_and_older_projects_get_the_list_indexes(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    with ProjectStore.create(tmp_path) as store:
        store.scan()
        db = store.db_path
    assert INDEXES <= _indexes(db)
    with sqlite3.connect(db) as c:
        for name in INDEXES:
            c.execute(f"DROP INDEX {name}")
    with ProjectStore.open(tmp_path, read_only=True):
        assert not INDEXES & _indexes(db)  # a read-only opening changes nothing
    with ProjectStore.open(tmp_path) as store:
        assert INDEXES <= _indexes(db)
        assert [r.relpath for r in store.images(order_by="uncertainty")] == ["a.png"]
    assert "images_by_uncertainty" in _plan(db, "SELECT id FROM images WHERE missing = 0 ORDER BY uncertainty IS NULL, "
                                                "-COALESCE(uncertainty, 0), sort_key, id LIMIT 5")
