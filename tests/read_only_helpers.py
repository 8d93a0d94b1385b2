"""Shared set-up for the tests of read-only projects (no tests here)."""

import os

from faceparse.core import store as store_module


def make_read_only(folder, monkeypatch) -> None:
    """As if the project folder could not be written (root can write anything, so permissions cannot show it)."""
    project_dir = str(folder.resolve() / ".faceparse")
    real_access = os.access
    monkeypatch.setattr(store_module.os, "access",
                        lambda path, mode: (False if mode == os.W_OK and str(path).startswith(project_dir)
                                            else real_access(path, mode)))
