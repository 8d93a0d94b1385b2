"""An annotator's approval and keys stay theirs: a reviewed prediction survives pre-labeling again."""

import numpy as np
from faceparse.core.store import ProjectStore
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import install_model, make_project, open_window


def test_a_prediction_marked_reviewed_survives_prelabeling_the_image_again(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2)
    install_model(folder)
    window = open_window(qtbot, folder, tmp_path)
    ws = window.ws
    session, canvas = ws.session, ws.canvas
    image_id = session.record.id
    approved = session.editor.mask.copy()
    QTest.keyClick(canvas, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: session.record.status == "reviewed")
    QTest.keyClick(canvas, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: ws.models.prelabel_task is None, timeout=60_000)
    with ProjectStore.open(folder) as store:
        assert not np.array_equal(store.predicted_mask(image_id), approved)  # the model did predict again
        assert np.array_equal(store.current_mask(image_id), approved)
        assert store.get(image_id).status == "reviewed"
    assert np.array_equal(session.editor.mask, approved)
