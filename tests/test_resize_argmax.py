"""The sparse arg-max of an enlargement equals ONNX Runtime's Resize followed by ArgMax, and the predictor uses it."""

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from faceparse.core.predictor import NETWORK_PREFIX, Predictor, enlarging_tail, read_model_info
from faceparse.core.resize_argmax import MODES, interpolate, resize_argmax, source_axis
from faceparse.core.schemas import get_schema
from onnx import TensorProto, helper, numpy_helper
from onnx_models import SIZE, foreground_model, model_meta, save_graph

CLASSES = 7


def smooth_scores(seed, h, w, classes=CLASSES):
    """Class scores that vary smoothly, like a network's: large regions with boundaries between them."""
    rng = np.random.default_rng(seed)
    return np.stack([cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), 2.0) * 30 for _ in range(classes)]).astype(np.float32)


def onnx_resize_argmax(scores, mode, scales=None, sizes=None):
    inputs = ["x", "", "scales"] if scales is not None else ["x", "", "", "sizes"]
    init = (numpy_helper.from_array(np.asarray([1, 1, *scales], np.float32), "scales") if scales is not None
            else numpy_helper.from_array(np.asarray([1, scores.shape[0], *sizes], np.int64), "sizes"))
    graph = helper.make_graph(
        [helper.make_node("Resize", inputs, ["big"], mode="linear", coordinate_transformation_mode=mode),
         helper.make_node("ArgMax", ["big"], ["index"], axis=1, keepdims=0)],
        "resize", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, *scores.shape])],
        [helper.make_tensor_value_info("index", TensorProto.INT64, None)], initializer=[init])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": scores[None]})[0][0]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scales", [(4.0, 4.0), (2.0, 3.0)])
def test_equals_resize_then_argmax_for_scales(mode, scales):
    scores = smooth_scores(1, 24, 20)
    out_h, out_w = int(24 * scales[0]), int(20 * scales[1])
    rows = source_axis(out_h, 24, mode, scales[0])
    cols = source_axis(out_w, 20, mode, scales[1])
    mine = resize_argmax(scores, rows, cols)
    expected = onnx_resize_argmax(scores, mode, scales=scales)
    assert mine.shape == expected.shape == (out_h, out_w)
    assert np.array_equal(mine, expected)
    top = scores.argmax(0)
    assert (top[rows.lo][:, cols.lo] != top[rows.hi][:, cols.hi]).any(), "the scores must have class boundaries"


@pytest.mark.parametrize("mode", MODES)
def test_equals_resize_then_argmax_for_sizes(mode):
    scores = smooth_scores(2, 16, 22)
    mine = resize_argmax(scores, source_axis(61, 16, mode), source_axis(57, 22, mode))
    assert np.array_equal(mine, onnx_resize_argmax(scores, mode, sizes=(61, 57)))


def test_interpolate_at_a_grid_matches_the_full_enlargement():
    scores = smooth_scores(3, 12, 12, classes=3)
    rows = source_axis(48, 12, "align_corners")
    full = interpolate(scores, rows, rows)
    sub = interpolate(scores, rows.every(4), rows.every(4))
    assert sub.shape == (3, 12, 12)
    np.testing.assert_allclose(sub, full[:, ::4, ::4], rtol=1e-5, atol=1e-4)


def test_opencv_and_numpy_interpolation_give_the_same_masks():
    scores = smooth_scores(4, 32, 32, classes=19)
    rows = source_axis(128, 32, "half_pixel", 4.0)
    assert rows.on_remap_grid(), "4x half-pixel positions lie on OpenCV's 1/32 grid"
    assert not source_axis(128, 32, "align_corners").on_remap_grid()
    by_opencv = resize_argmax(scores, rows, rows)
    by_numpy = resize_argmax(scores.astype(np.float64), rows, rows)  # float64 takes the numpy path
    assert np.array_equal(by_opencv, by_numpy)
    assert np.array_equal(by_opencv, onnx_resize_argmax(scores, "half_pixel", scales=(4.0, 4.0)))
    sub = rows.every(8)
    np.testing.assert_allclose(interpolate(scores, sub, sub), interpolate(scores.astype(np.float64), sub, sub),
                               rtol=1e-5, atol=1e-4)


def test_unknown_coordinate_mode_is_refused():
    with pytest.raises(ValueError, match="unsupported"):
        source_axis(8, 4, "tf_crop_and_resize")


# --- in the predictor ---------------------------------------------------------------------------------------------

def pooled_model(path, mode="align_corners", resize_mode="linear"):
    """Average-pool 4×, a random 1×1 convolution to the classes, then a 4× Resize back: a network whose last step
    enlarges its scores, as DeepLabV3+ does."""
    classes = get_schema("celebamask-hq").num_classes
    rng = np.random.default_rng(5)
    nodes = [helper.make_node("AveragePool", ["input"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
             helper.make_node("Conv", ["pooled", "w", "b"], ["scores"]),
             helper.make_node("Resize", ["scores", "", "scales"], ["logits"], mode=resize_mode,
                              coordinate_transformation_mode=mode)]
    inits = [numpy_helper.from_array(rng.normal(0, 8, (classes, 3, 1, 1)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(0, 1, classes).astype(np.float32), "b"),
             numpy_helper.from_array(np.asarray([1, 1, 4, 4], np.float32), "scales")]
    return save_graph(path, nodes, inits, classes, model_meta())


def pictures(count=3):
    rng = np.random.default_rng(7)
    small = rng.integers(0, 256, (count, SIZE // 8, SIZE // 8, 3)).astype(np.float32)
    return np.clip(np.repeat(np.repeat(small, 8, 1), 8, 2) + rng.normal(0, 20, (count, SIZE, SIZE, 3)), 0,
                   255).astype(np.uint8)


@pytest.mark.parametrize("mode", ["align_corners", "half_pixel"])
def test_predictor_without_the_enlargement_gives_the_same_masks(tmp_path, mode):
    path = pooled_model(tmp_path / "pooled.onnx", mode)
    sparse = Predictor(path, device="cpu", confidence=False)
    dense = Predictor(path, device="cpu", confidence=False, sparse_enlarge=False)
    assert sparse.tail is not None and sparse.tail.mode == mode and dense.tail is None
    assert [o.name for o in sparse.session.get_outputs()] == [sparse.tail.scores] == [NETWORK_PREFIX + "scores"]
    crops = pictures()
    for a, b in zip(sparse.predict(crops), dense.predict(crops), strict=True):
        assert a.index.shape == b.index.shape == (SIZE, SIZE)
        assert np.array_equal(a.index, b.index)
        assert len(np.unique(a.index)) > 1
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)


def test_enlargement_stays_in_the_graph_when_it_cannot_be_replaced(tmp_path):
    path = pooled_model(tmp_path / "pooled.onnx")
    assert Predictor(path, device="cpu", confidence=True).tail is None
    assert Predictor(path, device="cpu", confidence=False, tta=True).tail is None
    nearest = pooled_model(tmp_path / "nearest.onnx", resize_mode="nearest")
    assert Predictor(nearest, device="cpu", confidence=False).tail is None


def test_tail_of_a_model_without_resize(tmp_path):
    path = foreground_model(tmp_path / "conv.onnx")
    assert enlarging_tail(onnx.load(str(path)).graph) is None
    assert read_model_info(path).input_size == (SIZE, SIZE)
