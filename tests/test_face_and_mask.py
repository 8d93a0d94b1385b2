"""A masked-faces project pre-labels with both starter models: the parser's face, and the segmenter's face mask."""

import numpy as np
import pytest
from faceparse.core import model_resolver
from faceparse.core.face_and_mask import FaceAndMaskPredictor, wants_face_and_mask
from faceparse.core.faces import WHOLE_IMAGE
from faceparse.core.predictor import ModelError, Predictor
from faceparse.core.prelabel import PrelabelJob, class_mapping
from faceparse.core.schemas import get_schema
from faceparse.core.store import ProjectStore
from onnx_models import foreground_model
from PIL import Image

DARK, GREY, WHITE = 0, 110, 250


def _picture() -> np.ndarray:
    """Three bands: dark (background), grey (a face for the parser), white (a mask for the segmenter)."""
    image = np.full((64, 96, 3), DARK, np.uint8)
    image[:, 32:64] = GREY
    image[:, 64:] = WHITE
    return image


@pytest.fixture
def starters(tmp_path, monkeypatch):
    """Tiny stand-ins for the two shipped starter models: the parser calls every pixel that is not dark skin; the
    segmenter calls bright pixels face_mask."""
    folder = tmp_path / "starters"
    folder.mkdir()
    paths = {"parser": foreground_model(folder / "parser.onnx", "celebamask-hq", face_class=1, threshold=0.2),
             "mask": foreground_model(folder / "mask.onnx", "face-mask", face_class=1, threshold=0.7)}
    monkeypatch.setattr(model_resolver, "starter_model_path", lambda task: paths[task])
    return paths


def _project(root, schema):
    root.mkdir()
    Image.fromarray(_picture()).save(root / "band.png")
    store = ProjectStore.create(root, schema)
    store.scan()
    return store


def test_which_projects_need_both_models():
    assert wants_face_and_mask(get_schema("masked-faces"))
    assert not wants_face_and_mask(get_schema("face-mask")) and not wants_face_and_mask(get_schema("celebamask-hq"))


def test_a_masked_faces_project_gets_face_and_mask_from_the_two_starters(tmp_path, starters):
    store = _project(tmp_path / "p", "masked-faces")
    result = PrelabelJob(store, mode=WHOLE_IMAGE).run()
    assert result.predicted == 1 and result.model_id.count("+") == 1
    mask = store.predicted_mask(store.images()[0].id)
    face, face_mask = store.schema.index("face"), store.schema.index("face_mask")
    assert (mask[:, 4:28] == 0).all() and (mask[:, 36:60] == face).all() and (mask[:, 68:92] == face_mask).all()
    record = store.get(store.images()[0].id)
    assert record.model_version == result.model_id and record.uncertainty is not None
    again = PrelabelJob(store, mode=WHOLE_IMAGE).run()
    assert again.predicted == 0 and again.skipped_current == 1
    store.close()


def test_a_chosen_model_or_another_schema_runs_alone(tmp_path, starters):
    store = _project(tmp_path / "p", "masked-faces")
    result = PrelabelJob(store, str(starters["parser"]), mode=WHOLE_IMAGE).run()
    assert "+" not in result.model_id
    assert store.schema.index("face_mask") not in store.predicted_mask(store.images()[0].id)
    store.close()
    celeb = _project(tmp_path / "c", "celebamask-hq")
    assert "+" not in PrelabelJob(celeb, mode=WHOLE_IMAGE).run().model_id
    celeb.close()


def test_the_combined_probabilities_sum_to_one(starters):
    project = get_schema("masked-faces")
    parser = Predictor(starters["parser"], device="cpu", probabilities=True, confidence=False)
    segmenter = Predictor(starters["mask"], device="cpu", probabilities=True, confidence=False)
    lut = class_mapping(parser.info.classes, parser.info.schema_name, project)
    both = FaceAndMaskPredictor(parser, segmenter, project, lut)
    assert both.info.classes == tuple(project.classes) and both.input_size == parser.input_size
    (face,) = both.predict(_picture()[:, :64])
    assert face.probs.shape[0] == 3 and np.allclose(face.probs.sum(axis=0), 1.0, atol=1e-4)
    with pytest.raises(ModelError, match="face-mask segmenter"):
        FaceAndMaskPredictor(parser, parser, project, lut)
