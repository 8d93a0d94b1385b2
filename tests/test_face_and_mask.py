"""A masked-faces project pre-labels with both starter models: the parser's face, and the segmenter's face mask."""

from pathlib import Path

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


def test_the_studios_pre_label_this_image_uses_the_pair_too(tmp_path, starters):
    from faceparse.app.gui.model_jobs import PredictorCache, prelabel_image
    from faceparse.core.prelabel import MODE_SETTING

    store = _project(tmp_path / "p", "masked-faces")
    store.set_setting(MODE_SETTING, WHOLE_IMAGE)
    record = prelabel_image(store, store.images()[0].id, "cpu", PredictorCache())
    assert record.model_version.count("+") == 1
    assert store.schema.index("face_mask") in store.predicted_mask(record.id)
    assert PrelabelJob(store).run().skipped_current == 1
    store.close()


def _activate_mask_version(store, threshold):
    folder = store.models_dir / "mask" / "v0001"
    folder.mkdir(parents=True)
    foreground_model(folder / "model.onnx", "face-mask", face_class=1, threshold=threshold)
    store.add_model_version("mask", "v0001", folder, {"iou": 0.9})
    store.set_active_model("mask", "v0001")
    return folder / "model.onnx"


def test_a_trained_mask_version_replaces_the_starter_segmenter_beside_the_starter_parser(tmp_path, starters):
    """Training the mask task on a masked-faces project must change its pre-labels: the pair then uses the
    project's active mask version, and predictions by the starter pair are no longer current."""
    from faceparse.core.prelabel import describe_starter

    store = _project(tmp_path / "p", "masked-faces")
    first = PrelabelJob(store, mode=WHOLE_IMAGE).run()
    face, face_mask = store.schema.index("face"), store.schema.index("face_mask")
    assert (store.predicted_mask(store.images()[0].id)[:, 36:60] == face).all()

    _activate_mask_version(store, threshold=0.3)  # the version calls the grey band a mask too
    again = PrelabelJob(store, mode=WHOLE_IMAGE).run()
    assert again.predicted == 1 and again.model_id.endswith("+v0001") and again.model_id != first.model_id
    mask = store.predicted_mask(store.images()[0].id)
    assert (mask[:, 36:60] == face_mask).all() and (mask[:, 68:92] == face_mask).all()
    assert describe_starter(store.schema, "parser", "v0001") == (
        "the starter parser model, with the project's face-mask model v0001 for face_mask")
    store.close()


def test_an_unreadable_active_mask_version_stops_the_pair_and_names_the_way_out(tmp_path, starters):
    store = _project(tmp_path / "p", "masked-faces")
    _activate_mask_version(store, threshold=0.3).write_bytes(b"not a model")
    with pytest.raises(ModelError, match="activate v0001 --task mask"):
        PrelabelJob(store, mode=WHOLE_IMAGE).run()
    assert store.predicted_mask(store.images()[0].id) is None
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


class _Fixed:
    """An evaluation predictor whose logits come from a function of the normalised batch."""

    def __init__(self, schema_name, size, logits):
        schema = get_schema(schema_name)
        self.meta = {"task": "parser", "schema": {"name": schema.name, "classes": list(schema.classes)},
                     "input_size": [size, size], "normalization": {"mean": [0.5] * 3, "std": [0.25] * 3}}
        self._logits = logits

    def logits(self, batch):
        return self._logits(batch)


def test_the_retrain_baseline_scores_both_starters_as_they_pre_label():
    """What a masked-faces project's first retrain must beat: the parser's face plus the segmenter's mask."""
    from faceparse.core.evaluate import FaceAndMaskScorer, evaluate

    def parser_logits(batch):
        out = np.full((len(batch), 19, *batch.shape[2:]), -9.0, np.float32)
        out[:, 1] = 9.0  # skin everywhere
        return out

    def mask_logits(batch):
        pixels = batch * 0.25 + 0.5  # the segmenter's own normalisation undone: it sees the true brightness
        bright = (pixels.mean(axis=1) > 0.7).astype(np.float32)
        return np.stack([9.0 - 18.0 * bright, -9.0 + 18.0 * bright], axis=1)

    target = get_schema("masked-faces")
    parser, segmenter = _Fixed("celebamask-hq", 32, parser_logits), _Fixed("face-mask", 16, mask_logits)
    lut = class_mapping(tuple(parser.meta["schema"]["classes"]), "celebamask-hq", target)
    scorer = FaceAndMaskScorer(parser, segmenter, lut, target)
    image = np.full((32, 32, 3), 60, np.uint8)
    image[:, 16:] = 250
    truth = np.full((32, 32), target.index("face"), np.uint8)
    truth[:, 16:] = target.index("face_mask")
    metrics = evaluate(scorer, [(image, truth)], "parser")
    assert metrics["per_class_iou"]["face_mask"] > 0.8 and metrics["per_class_iou"]["face"] > 0.8
    probs = np.exp(scorer.logits(np.zeros((1, 3, 32, 32), np.float32)))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def test_a_masked_faces_projects_first_retrain_is_measured_against_both_starters(tmp_path, monkeypatch):
    from drawn_projects import make_project
    from faceparse.core import evaluate as evaluate_module
    from faceparse.core.jobs import JobReporter
    from faceparse.core.recipes import TrainConfig
    from faceparse.core.train_worker import run_retrain

    built = []
    real_init = evaluate_module.FaceAndMaskScorer.__init__

    def spy(self, *args, **kwargs):
        built.append(args[-1].name)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(evaluate_module.FaceAndMaskScorer, "__init__", spy)
    store, _ = make_project(tmp_path / "faces", count=6, corrected=6, schema="masked-faces", face_mask=True)
    config = TrainConfig.for_task("parser", input_size=64, batch_size=2, epochs=1, max_steps=1, threads=1,
                                  export_onnx=False, repredict=False, time_limit_s=None, init="imagenet",
                                  pretrain=False)
    result = run_retrain(store, config, JobReporter(store, store.add_job("retrain", {})), tmp_path / "work")
    assert built == ["masked-faces"] and result["baseline_score"] is not None
    assert store.model_version("parser", result["version"])["metrics"]["baseline"]["source"] == "starter"
    store.close()


def test_the_baseline_of_a_parser_retrain_pairs_the_starter_parser_with_the_active_mask_version(tmp_path,
                                                                                                monkeypatch):
    """A masked-faces project whose mask task was trained pre-labels with the starter parser and that version, so a
    new parser must beat that pair, not the two starters."""
    import shutil

    from faceparse.core import evaluate as evaluate_module
    from faceparse.core.evaluate import FaceAndMaskScorer, starter_scorer
    from faceparse.core.face_and_mask import mask_partner

    store = _project(tmp_path / "p", "masked-faces")
    assert mask_partner(store) is None
    folder = _activate_mask_version(store, threshold=0.3).parent
    assert mask_partner(store) == folder
    shutil.copyfile(model_resolver.starter_model_path("mask"), folder / "model.onnx")
    opened = []
    real_open = evaluate_module.open_predictor
    monkeypatch.setattr(evaluate_module, "open_predictor", lambda path, prefer="torch": (
        opened.append(path), real_open(path, prefer))[1])
    scorer = starter_scorer(store.schema, "parser", prefer="onnx", mask_partner=mask_partner(store))
    assert isinstance(scorer, FaceAndMaskScorer) and opened[-1] == folder

    notes = []
    (folder / "model.onnx").write_bytes(b"not a model")
    alone = starter_scorer(store.schema, "parser", notes=notes, prefer="onnx", mask_partner=folder)
    assert not isinstance(alone, FaceAndMaskScorer) and "the active face-mask model" in notes[0]
    store.close()


def test_a_promoted_mask_version_re_predicts_a_masked_faces_project_with_the_new_pair(tmp_path):
    """Without a parser version of its own, the project pre-labels with the starter parser beside its mask version,
    so promoting a new mask version re-predicts the uncorrected faces with the new pair."""
    from drawn_projects import make_project
    from faceparse.core.jobs import JobReporter
    from faceparse.core.recipes import TrainConfig
    from faceparse.core.train_worker import run_retrain

    store, _ = make_project(tmp_path / "faces", count=8, corrected=6, schema="masked-faces", face_mask=True)
    first = PrelabelJob(store, mode=WHOLE_IMAGE, threads=1).run()
    config = TrainConfig.for_task("mask", input_size=64, batch_size=2, epochs=1, max_steps=1, threads=1,
                                  export_onnx=True, repredict=True, time_limit_s=None, promote="force",
                                  pretrain=False)
    result = run_retrain(store, config, JobReporter(store, store.add_job("retrain", {})), tmp_path / "work")
    assert result["promoted"] and result["repredict"]["state"] == "done"
    assert result["repredict"]["predicted"] == first.predicted
    assert not any("does not re-predict" in note for note in result["notes"])
    uncorrected = [r for r in store.images() if r.status == "predicted"]
    assert uncorrected and all(r.model_version.endswith(f"+{result['version']}") for r in uncorrected)
    assert PrelabelJob(store, mode=WHOLE_IMAGE, threads=1).run().predicted == 0
    store.close()


def test_a_parser_retrain_is_measured_against_the_starter_parser_beside_the_active_mask_version(tmp_path,
                                                                                               monkeypatch):
    import shutil

    from drawn_projects import make_project
    from faceparse.core import evaluate as evaluate_module
    from faceparse.core.jobs import JobReporter
    from faceparse.core.recipes import TrainConfig
    from faceparse.core.train_worker import run_retrain
    from faceparse.core.versions import starter_checkpoint

    store, _ = make_project(tmp_path / "faces", count=6, corrected=6, schema="masked-faces", face_mask=True)
    folder = store.models_dir / "mask" / "v0001"
    shutil.copytree(starter_checkpoint("mask"), folder)
    store.add_model_version("mask", "v0001", folder, {"iou": 0.9})
    store.set_active_model("mask", "v0001")
    opened = []
    real_open = evaluate_module.open_predictor
    monkeypatch.setattr(evaluate_module, "open_predictor", lambda path, prefer="torch": (
        opened.append(Path(path)), real_open(path, prefer))[1])
    config = TrainConfig.for_task("parser", input_size=64, batch_size=2, epochs=1, max_steps=1, threads=1,
                                  export_onnx=False, repredict=False, time_limit_s=None, init="imagenet",
                                  pretrain=False)
    result = run_retrain(store, config, JobReporter(store, store.add_job("retrain", {})), tmp_path / "work")
    assert folder in opened and result["baseline_score"] is not None
    store.close()


def test_the_way_out_of_a_missing_active_mask_version_names_the_mask_task(tmp_path, starters):
    """`faceparse models FOLDER rollback` means the parser on a masked-faces project: the advice must say --task."""
    import shutil

    from faceparse.app.cli import main
    from faceparse.core.model_resolver import ModelNotFoundError, find_model

    store = _project(tmp_path / "p", "masked-faces")
    folder = _activate_mask_version(store, threshold=0.3).parent
    shutil.rmtree(folder)
    with pytest.raises(ModelNotFoundError) as caught:
        find_model(store, None, "mask")
    advice = str(caught.value)
    assert f"`faceparse models {store.root} rollback --task mask`" in advice and "Models panel" not in advice
    store.close()
    assert main(["models", str(tmp_path / "p"), "rollback", "--task", "mask"]) == 0
