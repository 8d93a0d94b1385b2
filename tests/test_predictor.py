"""Predictor: the wrapped graph matches the raw model, providers are chosen and reported, flip TTA swaps classes.

The models here are written directly as small ONNX graphs (milliseconds to build) with the same interface and
metadata as `export_onnx` produces; one slow test checks a real exported PyTorch module end to end. The graph builders
live in `onnx_models`.
"""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from faceparse.core import predictor as predictor_module
from faceparse.core.predictor import (
    CPU,
    CUDA,
    UNCERTAINTY_STRIDE,
    ModelError,
    Predictor,
    choose_providers,
    cpu_count,
    read_model_info,
    session_options,
)
from faceparse.core.schemas import get_schema
from faceparse.core.uncertainty import face_uncertainty, image_uncertainty, pixel_uncertainty
from onnx import helper, numpy_helper
from onnx_models import SIZE, foreground_model, model_meta, save_graph, side_model


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("predictor_models")
    return {"noisy": foreground_model(root / "noisy.onnx", seed=1), "side": side_model(root / "side.onnx"),
            "side_unpaired": side_model(root / "side_unpaired.onnx", flip_pairs=[])}


def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def left_eye_picture():
    picture = np.zeros((SIZE, SIZE, 3), np.uint8)
    picture[20:30, 42:52] = 255
    return picture


# --- the wrapped graph --------------------------------------------------------------------------------------------

def test_outputs_match_the_raw_model(models):
    pred = Predictor(models["noisy"], device="cpu")
    crops = np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    raw = ort.InferenceSession(str(models["noisy"]), providers=[CPU])
    x = (crops.astype(np.float32) / 255.0).transpose(0, 3, 1, 2)
    probs = softmax(raw.run(None, {"input": x})[0])
    faces = pred.predict(crops)
    assert len(faces) == 3
    for face, p in zip(faces, probs, strict=True):
        assert face.index.dtype == np.uint8 and face.index.shape == (SIZE, SIZE)
        np.testing.assert_array_equal(face.index, p.argmax(axis=0))
        np.testing.assert_allclose(face.confidence, p.max(axis=0), atol=1e-5)
        np.testing.assert_allclose(face.probs, p[:, ::UNCERTAINTY_STRIDE, ::UNCERTAINTY_STRIDE], atol=1e-5)


def test_normalisation_from_the_metadata_is_applied(tmp_path):
    path = foreground_model(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    meta = json.loads(proto.metadata_props[0].value)
    meta["normalization"] = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    proto.metadata_props[0].value = json.dumps(meta)
    onnx.save(proto, str(path))
    # x = (p/255 - 0.5) / 0.25: mid-grey becomes ~0 (background); white becomes 2 per channel (face)
    grey_and_white = np.stack([np.full((SIZE, SIZE, 3), 128, np.uint8), np.full((SIZE, SIZE, 3), 255, np.uint8)])
    faces = Predictor(path, device="cpu").predict(grey_and_white)
    assert (faces[0].index == 0).all() and (faces[1].index == 1).all()


def test_batches_give_the_same_answer_as_single_faces(models):
    crops = np.random.default_rng(1).integers(0, 256, (7, SIZE, SIZE, 3), dtype=np.uint8)
    batched = Predictor(models["noisy"], device="cpu", batch_size=3).predict(crops)
    single = Predictor(models["noisy"], device="cpu", batch_size=1)
    assert len(batched) == 7
    for crop, face in zip(crops, batched, strict=True):
        np.testing.assert_array_equal(single.predict(crop)[0].index, face.index)


def test_outputs_can_be_left_out(models):
    pred = Predictor(models["noisy"], device="cpu", confidence=False, probabilities=False)
    face = pred.predict(np.zeros((SIZE, SIZE, 3), np.uint8))[0]
    assert face.confidence is None and face.probs is None and face.index.shape == (SIZE, SIZE)


# --- flip TTA -----------------------------------------------------------------------------------------------------

def test_side_model_reads_sides(models):
    schema = get_schema("celebamask-hq")
    face = Predictor(models["side"], device="cpu").predict(left_eye_picture())[0]
    assert face.index[25, 47] == schema.index("l_eye")
    mirrored = Predictor(models["side"], device="cpu").predict(left_eye_picture()[:, ::-1])[0]
    assert mirrored.index[25, SIZE - 1 - 47] == schema.index("r_eye")


def test_flip_tta_swaps_left_and_right(models):
    schema = get_schema("celebamask-hq")
    face = Predictor(models["side"], device="cpu", tta=True).predict(left_eye_picture())[0]
    assert face.index[25, 47] == schema.index("l_eye")
    assert (face.index[20:30, 42:52] == schema.index("l_eye")).all()
    assert face.confidence[25, 47] > 0.95
    assert (face.index[:, :40] == 0).all()


def test_flip_tta_averages_the_mirrored_pass(models):
    # Without left/right pairs the mirrored pass votes for r_eye, so the average is split: proof both passes ran.
    face = Predictor(models["side_unpaired"], device="cpu", tta=True).predict(left_eye_picture())[0]
    probs = face.probs
    l_eye, r_eye = get_schema("celebamask-hq").index("l_eye"), get_schema("celebamask-hq").index("r_eye")
    assert abs(probs[l_eye, 24 // UNCERTAINTY_STRIDE, 48 // UNCERTAINTY_STRIDE] - 0.5) < 0.05
    assert abs(probs[r_eye, 24 // UNCERTAINTY_STRIDE, 48 // UNCERTAINTY_STRIDE] - 0.5) < 0.05
    assert face.confidence[25, 47] < 0.55


# --- providers and threads ----------------------------------------------------------------------------------------

def test_provider_choice():
    assert choose_providers("cpu", [CUDA, CPU]) == ([CPU], None)
    assert choose_providers("auto", [CUDA, CPU]) == ([CUDA, CPU], None)
    assert choose_providers("cuda", [CUDA, CPU]) == ([CUDA, CPU], None)
    assert choose_providers("auto", [CPU]) == ([CPU], None)
    providers, notice = choose_providers("cuda", [CPU])
    assert providers == [CPU] and "CUDA" in notice and "CPU" in notice
    with pytest.raises(ValueError, match="device"):
        choose_providers("tpu", [CPU])


def test_cuda_request_without_cuda_runs_on_cpu_and_says_so(models):
    assert CUDA not in ort.get_available_providers()
    pred = Predictor(models["noisy"], device="cuda")
    assert pred.provider == CPU and pred.device == "cpu"
    assert "CUDA" in pred.notice and "running on CPU" in pred.notice
    assert pred.predict(np.zeros((SIZE, SIZE, 3), np.uint8))[0].index.shape == (SIZE, SIZE)
    assert Predictor(models["noisy"], device="cpu").notice is None


def test_threads_default_to_every_core(models):
    assert session_options().intra_op_num_threads == cpu_count()
    assert session_options(3).intra_op_num_threads == 3
    assert Predictor(models["noisy"], device="cpu").threads == cpu_count()


# --- bad model files ----------------------------------------------------------------------------------------------

def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "weights.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        Predictor(path)
    with pytest.raises(ModelError, match="not found"):
        Predictor(tmp_path / "missing.onnx")


def test_a_model_whose_own_names_are_the_wrappers_names(tmp_path):
    """An outside network may call its input `image` and its tensors `probs`, `index` or `confidence`."""
    classes = get_schema("celebamask-hq").num_classes
    weight = np.zeros((classes, 3, 1, 1), np.float32)
    weight[1] = 20.0
    bias = np.full(classes, -5.0, np.float32)
    bias[0] = 5.0
    nodes = [helper.make_node("Conv", ["image", "fp_w_1", "probs"], ["confidence"]),
             helper.make_node("Identity", ["confidence"], ["index"])]
    inits = [numpy_helper.from_array(weight, "fp_w_1"), numpy_helper.from_array(bias, "probs")]
    path = save_graph(tmp_path / "named.onnx", nodes, inits, classes, model_meta(), input_name="image",
                      output_name="index")
    picture = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    picture[1] = 255
    for tta in (False, True):
        faces = Predictor(path, device="cpu", tta=tta).predict(picture)
        assert (faces[0].index == 0).all() and (faces[1].index == 1).all()
        assert faces[1].confidence.min() > 0.99 and faces[1].probs.shape[0] == classes
    plain = Predictor(path, device="cpu", confidence=False, probabilities=False).predict(picture)
    assert (plain[1].index == 1).all()


def test_a_model_whose_branches_use_the_outer_weights(tmp_path):
    """If/Loop branches may read the main graph's initializers; the prefixing must rename those uses too."""
    classes = get_schema("celebamask-hq").num_classes
    weight = np.zeros((classes, 3, 1, 1), np.float32)
    weight[0], weight[1] = -20.0, 20.0
    bias = np.zeros(classes, np.float32)
    bias[0], bias[1] = 2.0, -2.0
    branches = {}
    for name in ("then", "else"):
        out = helper.make_tensor_value_info(f"{name}_out", onnx.TensorProto.FLOAT, None)
        branches[name] = helper.make_graph([helper.make_node("Conv", ["input", "w", "b"], [f"{name}_out"])],
                                           name, [], [out])
    nodes = [helper.make_node("If", ["cond"], ["logits"], then_branch=branches["then"],
                              else_branch=branches["else"])]
    inits = [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b"),
             numpy_helper.from_array(np.array(True), "cond")]
    path = save_graph(tmp_path / "branches.onnx", nodes, inits, classes, model_meta())
    picture = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    picture[1] = 255
    faces = Predictor(path, device="cpu").predict(picture)
    assert (faces[0].index == 0).all() and (faces[1].index == 1).all()


def test_model_without_metadata(tmp_path):
    classes = 19
    nodes = [helper.make_node("Conv", ["input", "w"], ["logits"])]
    path = save_graph(tmp_path / "bare.onnx", nodes, [numpy_helper.from_array(np.zeros((classes, 3, 1, 1),
                                                                                        np.float32), "w")],
                      classes, None)
    with pytest.raises(ModelError, match="no 'faceparse' metadata"):
        read_model_info(path)


def test_model_whose_outputs_do_not_match_its_schema(tmp_path):
    nodes = [helper.make_node("Conv", ["input", "w"], ["logits"])]
    inits = [numpy_helper.from_array(np.zeros((5, 3, 1, 1), np.float32), "w")]
    path = save_graph(tmp_path / "five.onnx", nodes, inits, 5, model_meta())
    with pytest.raises(ModelError, match="5 outputs but its schema 'celebamask-hq' has 19 classes"):
        Predictor(path)


def test_metadata_is_checked(tmp_path):
    path = foreground_model(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    meta = json.loads(proto.metadata_props[0].value)
    meta["input_size"] = [64]
    proto.metadata_props[0].value = json.dumps(meta)
    onnx.save(proto, str(path))
    with pytest.raises(ModelError, match="input_size"):
        read_model_info(path)


@pytest.mark.parametrize("pairs", [[[1, 2], [2, 3]], [[4, 4]]])
def test_flip_pairs_that_share_a_class_are_refused(tmp_path, pairs):
    """A class in two pairs would make the mirrored prediction's channel order no permutation, and test-time
    flipping would quietly drop a class."""
    path = foreground_model(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    meta = json.loads(proto.metadata_props[0].value)
    meta["schema"]["flip_pairs"] = pairs
    proto.metadata_props[0].value = json.dumps(meta)
    onnx.save(proto, str(path))
    with pytest.raises(ModelError, match="already paired"):
        read_model_info(path)


# --- uncertainty ------------------------------------------------------------------------------------------------

def test_pixel_uncertainty_bounds():
    certain = np.zeros((4, 2, 2), np.float32)
    certain[1] = 1.0
    uniform = np.full((4, 2, 2), 0.25, np.float32)
    for method in ("entropy", "margin"):
        np.testing.assert_allclose(pixel_uncertainty(certain, method), 0.0, atol=1e-6)
        np.testing.assert_allclose(pixel_uncertainty(uniform, method), 1.0, atol=1e-6)
    split = np.zeros((4, 1, 1), np.float32)
    split[0], split[1] = 0.7, 0.3
    assert pixel_uncertainty(split, "margin")[0, 0] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="method"):
        pixel_uncertainty(uniform, "variance")


def test_face_uncertainty_counts_face_pixels_inside_the_picture():
    probs = np.zeros((3, 2, 2), np.float32)
    probs[0, 0, 0] = 1.0  # certain background
    probs[:, 0, 1] = 1 / 3  # unsure, labeled face
    probs[1, 1, :] = 1.0  # certain face, but the second one is padding
    labels = np.array([[0, 1], [1, 1]])
    valid = np.array([[True, True], [True, False]])
    face = face_uncertainty(probs, labels, valid, pixel_area=4.0)
    assert face.mean == pytest.approx(0.5, abs=1e-6) and face.weight == 8.0
    nothing = face_uncertainty(probs, np.zeros((2, 2), int), valid)
    assert nothing.weight == 3.0
    assert image_uncertainty([face, nothing]) == pytest.approx((0.5 * 8 + nothing.mean * 3) / 11)
    assert image_uncertainty([]) is None


# --- a real export ------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_model_exported_from_pytorch(tmp_path):
    torch = pytest.importorskip("torch")
    from faceparse.core.augment import to_tensor_array
    from faceparse.core.onnx_export import export_onnx

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 19, 1))
    meta = model_meta(architecture="deeplabv3plus_mobilenetv2")
    meta["normalization"] = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    path = export_onnx(net, meta, tmp_path / "exported.onnx")
    crops = np.random.default_rng(2).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    with torch.no_grad():
        x = torch.from_numpy(np.stack([to_tensor_array(c, **meta["normalization"]) for c in crops]))
        expected = net(x).argmax(dim=1).numpy()
    faces = Predictor(path, device="cpu", tta=True).predict(crops)
    plain = Predictor(path, device="cpu").predict(crops)
    for face, tta_face, want in zip(plain, faces, expected, strict=True):
        assert (face.index == want).mean() > 0.999
        assert tta_face.index.shape == want.shape
    assert predictor_module.read_model_info(path).input_size == (SIZE, SIZE)


@pytest.mark.parametrize("tta", [False, True])
def test_a_model_giving_nan_is_refused_rather_than_saving_noise(tmp_path, tta):
    """A retrain that diverged can leave weights that give NaN: its masks would be arbitrary classes and its
    uncertainty NaN, so prediction stops with what is wrong instead."""
    path = foreground_model(tmp_path / "diverged.onnx", seed=1)
    graph = onnx.load(path)
    for tensor in graph.graph.initializer:
        if tensor.name == "b":
            bias = numpy_helper.to_array(tensor).copy()
            bias[3] = np.nan
            tensor.CopyFrom(numpy_helper.from_array(bias, "b"))
    onnx.save(graph, path)
    predictor = Predictor(path, device="cpu", threads=1, tta=tta, confidence=False)
    with pytest.raises(ModelError, match="not numbers"):
        predictor.predict(np.full((2, SIZE, SIZE, 3), 200, np.uint8))
