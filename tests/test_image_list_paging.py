"""The image list pages by the last record it showed, so images whose status changes between pages are neither
skipped nor shown twice."""

import numpy as np
import pytest
from faceparse.app.gui import image_list
from faceparse.core.store import ORDERINGS, ProjectStore
from faceparse.core.synthetic import make_synthetic_folder
from test_gui_helpers import make_project, open_window

UNCERTAINTIES = [0.5, None, 0.2, 0.5, None, 0.9, 0.2, 0.1, 0.5, None, 0.7]


@pytest.mark.parametrize("order_by", ORDERINGS)
def test_paging_after_a_record_continues_the_full_listing(tmp_path, order_by):
    make_synthetic_folder(tmp_path / "faces", len(UNCERTAINTIES), size=32, seed=3)
    with ProjectStore.create(tmp_path / "faces", "celebamask-hq") as store:
        store.scan()
        mask = np.zeros((32, 32), np.uint8)
        for record, score in zip(store.images(), UNCERTAINTIES, strict=True):
            if score is not None:
                store.save_predicted(record.id, mask, "v0001", uncertainty=score)
        full = [r.id for r in store.images(order_by=order_by)]
        paged, last = [], None
        while page := store.images(order_by=order_by, limit=3, after=last):
            paged += [r.id for r in page]
            last = page[-1]
        assert paged == full and len(full) == len(UNCERTAINTIES)


def test_filtered_list_shows_every_image_when_statuses_change_between_pages(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(image_list, "PAGE_SIZE", 4)
    folder = make_project(tmp_path / "faces", count=11, size=64)
    window = open_window(qtbot, folder, tmp_path)
    panel = window.ws.image_list
    panel.status_filter.setCurrentIndex(panel.status_filter.findData("predicted"))
    model = panel.model
    assert model.rowCount() == 4
    with ProjectStore.open(folder) as store:
        expected = [r.id for r in store.images(status="predicted")]
        for row in range(4):
            store.set_status(model.record(row).id, "reviewed")
    while model.canFetchMore():
        model.fetchMore()
    shown = [model.record(row).id for row in range(model.rowCount())]
    assert shown == expected
