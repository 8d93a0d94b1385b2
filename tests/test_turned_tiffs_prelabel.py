"""A TIFF turned a quarter by its orientation tag is measured as it is shown (whatever the Pillow version), so its
mask fits it; an index that recorded such a photo's size the wrong way round learns the right one at the first save;
and photos whose masks do not fit them are skipped one by one without stopping the run."""

import numpy as np
import pytest
from faceparse.core.faces import WHOLE_IMAGE
from faceparse.core.imageio import load_rgb, read_size
from faceparse.core.prelabel import SAVE_FAILURES_TO_STOP, PrelabelJob
from faceparse.core.store import MaskError, ProjectStore
from faceparse.core.synthetic import draw_face
from onnx_models import foreground_model
from PIL import Image

ORIENTATION = 0x0112


def turned_tiff(path, seed=0, size=(60, 100)):
    """Pixels stored 100 wide and 60 high, shown 60 wide and 100 high (orientation 6: turn a quarter)."""
    face = draw_face(seed, 100, background="none")[0][:60]
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    Image.fromarray(face).save(path, format="TIFF", exif=exif)
    return path


def test_a_turned_tiff_is_measured_as_shown(tmp_path):
    path = turned_tiff(tmp_path / "t.tif")
    assert read_size(path) == (60, 100)
    assert load_rgb(path).shape == (100, 60, 3)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return foreground_model(tmp_path_factory.mktemp("tiff_models") / "face.onnx")


def test_turned_tiffs_are_pre_labeled_with_masks_that_fit_them(tmp_path, model):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        turned_tiff(folder / f"t{i}.tif", seed=i)
    with ProjectStore.create(folder) as store:
        store.scan()
        result = PrelabelJob(store, model, mode=WHOLE_IMAGE).run()
        assert result.predicted == 3 and not result.failed
        for rec in store.images():
            assert store.predicted_mask(rec.id).shape == (100, 60)


def test_a_size_recorded_the_wrong_way_round_is_corrected_at_the_first_save(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    turned_tiff(folder / "t.tif")
    with ProjectStore.create(folder) as store:
        store.scan()
        rec = store.images()[0]
        store.save_corrected(rec.id, np.zeros((100, 60), np.uint8))
        with store._write() as c:  # as an earlier version recorded it
            c.execute("UPDATE images SET width = 100, height = 60 WHERE id = ?", (rec.id,))
        store.save_corrected(rec.id, np.ones((100, 60), np.uint8))
        assert (store.get(rec.id).width, store.get(rec.id).height) == (60, 100)
        with pytest.raises(MaskError, match="is 100x60, but the image is 60x100"):
            store.save_corrected(rec.id, np.zeros((60, 100), np.uint8))


def test_masks_that_do_not_fit_their_photos_are_skipped_without_stopping_the_run(tmp_path, model, monkeypatch):
    folder = tmp_path / "photos"
    folder.mkdir()
    count = SAVE_FAILURES_TO_STOP + 3
    for i in range(count):
        Image.fromarray(draw_face(i, 48, background="none")[0]).save(folder / f"p{i}.png")
    with ProjectStore.create(folder) as store:
        store.scan()
        real = ProjectStore.save_predicted
        ids = [rec.id for rec in store.images()]

        def misfit(self, image_id, mask, *args, **kwargs):
            if image_id in ids[:-1]:
                mask = mask[:-1]
            return real(self, image_id, mask, *args, **kwargs)
        monkeypatch.setattr(ProjectStore, "save_predicted", misfit)
        result = PrelabelJob(store, model, mode=WHOLE_IMAGE, batch_size=1).run()
        assert result.state == "done" and result.predicted == 1 and len(result.failed) == count - 1
        assert all("but the image is 48x48" in reason for _, reason in result.failed)
        assert store.count_errors() == 0
