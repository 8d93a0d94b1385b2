"""The Qt binding the studio runs on must not leak references to None.

PySide6 6.12.0 on Python 3.11 releases one reference to None at every call of a Qt method that returns nothing
(`update`, `setFocus`, ...). None is not immortal before Python 3.12, so after enough repaints its count reaches
zero and the interpreter aborts with "deallocating None", taking unsaved strokes with it. pyproject.toml keeps that
release out; this test fails on any binding that does the same.
"""

import gc
import sys

from PySide6.QtWidgets import QWidget


def test_qt_calls_that_return_nothing_keep_their_reference_to_none(qtbot):
    widget = QWidget()
    qtbot.addWidget(widget)
    widget.show()
    gc.collect()
    before = sys.getrefcount(None)
    for _ in range(2000):
        widget.update()
        widget.setFocus()
    gc.collect()
    assert sys.getrefcount(None) - before > -200
