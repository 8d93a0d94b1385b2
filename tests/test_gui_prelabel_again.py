"""Models > Pre-label All Images Again: the studio's `prelabel --redo`, asked first because it replaces predictions
imported from another dataset; corrected images are never touched."""

import numpy as np
from faceparse.app.gui import main_window as main_window_module
from faceparse.core.store import ProjectStore
from PySide6.QtWidgets import QMessageBox, QTabBar
from test_gui_helpers import install_model, make_project, open_window


def _project(tmp_path):
    """Four faces predicted by v0001 (the model now installed): the first imported, the last corrected."""
    folder = make_project(tmp_path / "faces", count=4, size=64)
    install_model(folder)
    with ProjectStore.open(folder) as store:
        records = store.images()
        imported = np.full((64, 64), 2, np.uint8)
        store.save_predicted(records[0].id, imported, "import:other-dataset")
        store.save_corrected(records[3].id, np.ones((64, 64), np.uint8))
    return folder, [r.id for r in records], imported


def _front_tab(window):
    """The panel in front of the two that share the right-hand tabs."""
    bar = next(bar for bar in window.findChildren(QTabBar) if bar.count() == 2 and bar.isVisible())
    return bar.tabText(bar.currentIndex())


def _answering(monkeypatch, answer):
    asked = []
    monkeypatch.setattr(main_window_module.QMessageBox, "question",
                        staticmethod(lambda *args, **kwargs: asked.append(args[2]) or answer))
    return asked


def test_all_images_keeps_the_imported_prediction_and_names_the_action_that_replaces_it(qtbot, tmp_path):
    folder, ids, imported = _project(tmp_path)
    window = open_window(qtbot, folder, tmp_path)
    models = window.ws.models
    assert _front_tab(window) == "Classes"
    window.actions["prelabel_all"].trigger()
    assert _front_tab(window) == "Models"  # where the progress shows
    qtbot.waitUntil(lambda: models.prelabel_task is None, timeout=60_000)
    assert window.statusBar().currentMessage().startswith("Pre-labeling: 0 predicted, 0 failed")
    assert "1 imported predictions kept (Pre-label All Images Again replaces them)" in models.prelabel_status.text()
    assert np.array_equal(window.ws.store.predicted_mask(ids[0]), imported)


def test_pre_label_all_again_asks_then_replaces_every_prediction_but_never_a_correction(qtbot, tmp_path,
                                                                                          monkeypatch):
    folder, ids, imported = _project(tmp_path)
    window = open_window(qtbot, folder, tmp_path)
    models, store = window.ws.models, window.ws.store
    before = {i: store.predicted_mask(i).copy() for i in ids}

    asked = _answering(monkeypatch, QMessageBox.StandardButton.No)
    window.actions["prelabel_all_again"].trigger()
    assert "Predict all 3 predicted image(s) again" in asked[0]
    assert "replacing the 1 imported from another dataset" in asked[0]
    assert models.prelabel_task is None
    assert np.array_equal(store.predicted_mask(ids[0]), imported)

    _answering(monkeypatch, QMessageBox.StandardButton.Yes)
    window.actions["prelabel_all_again"].trigger()
    assert models.prelabel_task is not None
    window.actions["prelabel_all_again"].trigger()  # a second run is refused in words, not in silence
    assert "A pre-labeling job is running" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: models.prelabel_task is None, timeout=60_000)
    assert models.prelabel_status.text().startswith("3 predicted, 0 failed")
    for i in ids[:3]:
        record = store.get(i)
        assert record.status == "predicted" and record.model_version == "v0001"
        assert not np.array_equal(store.predicted_mask(i), before[i])  # the 1x1 model's mask, not the stored one
    assert store.get(ids[3]).status == "corrected"
    assert np.array_equal(store.corrected_mask(ids[3]), np.ones((64, 64)))
    assert np.array_equal(store.predicted_mask(ids[3]), before[ids[3]])
