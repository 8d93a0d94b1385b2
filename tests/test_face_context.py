"""Hair, neck and clothes run past a face's crop: a wider view around the face fills in the pixels no face crop
covers, so a portrait's mask does not stop on the crop's straight edge; inside the crop the close view stands."""

import numpy as np
import pytest
from faceparse.core.faces import FACES, face_crop_box
from faceparse.core.framing import CONTEXT_MARGIN, Framing, predict_image, prepare_array
from faceparse.core.predictor import Predictor
from onnx_models import foreground_model

FACE = (80, 60, 120, 100)  # a 40 px face in a 300 x 240 picture


class KnownFaces:
    def __init__(self, boxes):
        self.boxes = boxes

    def detect(self, image):
        return list(self.boxes)


def portrait() -> np.ndarray:
    """A bright figure: head, and a body running down to the bottom edge, far below the face crop."""
    picture = np.zeros((240, 300, 3), np.uint8)
    picture[55:110, 75:125] = 200
    picture[110:240, 40:160] = 180
    return picture


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return Predictor(foreground_model(tmp_path_factory.mktemp("context") / "fg.onnx", threshold=0.05), device="cpu")


def test_the_body_below_the_face_crop_is_labeled(predictor):
    picture = portrait()
    inner = face_crop_box(FACE).covered_pixels((300, 240))
    wide = face_crop_box(FACE, CONTEXT_MARGIN).covered_pixels((300, 240))
    closed = predict_image(picture, predictor, Framing(FACES, KnownFaces([FACE]), context=False))
    opened = predict_image(picture, predictor, Framing(FACES, KnownFaces([FACE])))
    below = slice(inner[3], wide[3]), slice(40, 160)
    assert not closed.mask[below].any()  # the straight edge at the bottom of the face crop
    assert (opened.mask[below] != 0).mean() > 0.95
    assert np.array_equal(opened.mask[inner[1]:inner[3], inner[0]:inner[2]],
                          closed.mask[inner[1]:inner[3], inner[0]:inner[2]])
    assert not opened.mask[:, 170:].any()  # nothing where the picture is dark
    assert opened.boxes == closed.boxes == [face_crop_box(FACE)]
    assert opened.uncertainty == pytest.approx(closed.uncertainty)


def test_no_wider_view_when_the_face_crop_holds_the_whole_picture():
    picture = portrait()[40:120, 60:140]
    prepared = prepare_array(None, picture, Framing(FACES, KnownFaces([(20, 20, 60, 60)])), (64, 64))
    assert prepared.context == 0 and len(prepared.crops) == 1
    prepared = prepare_array(None, portrait(), Framing(FACES, KnownFaces([FACE])), (64, 64))
    assert prepared.context == 1 and len(prepared.crops) == 2 and prepared.faces == 1


def test_a_scene_with_context_keeps_its_faces_and_labels_little_else(tmp_path):
    import cv2
    from faceparse.core.synthetic import draw_scene

    picture, truth, boxes = draw_scene(11, (400, 300), faces=4, background="none")
    predictor = Predictor(foreground_model(tmp_path / "fg.onnx", threshold=0.01), device="cpu")
    closed = predict_image(picture, predictor, Framing(FACES, KnownFaces(boxes), context=False))
    opened = predict_image(picture, predictor, Framing(FACES, KnownFaces(boxes)))
    for x0, y0, x1, y1 in (face_crop_box(b).covered_pixels((400, 300)) for b in boxes):
        assert np.array_equal(opened.mask[y0:y1, x0:x1], closed.mask[y0:y1, x0:x1])
    near = cv2.dilate((truth != 0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert near[opened.mask != 0].mean() > 0.995
    assert (opened.mask != 0).sum() >= (closed.mask != 0).sum()


def test_the_body_goes_on_below_the_widest_view_by_one_view_height(predictor):
    picture = np.zeros((320, 300, 3), np.uint8)
    picture[55:110, 75:125] = 200
    picture[110:, 60:140] = 180  # the body, narrower than the view, down to the bottom edge
    picture[150:, 5:30] = 180  # something bright beside, under no view
    wide = face_crop_box(FACE, CONTEXT_MARGIN).covered_pixels((300, 320))
    reach = wide[3] + (wide[3] - wide[1])
    opened = predict_image(picture, predictor, Framing(FACES, KnownFaces([FACE])))
    assert (opened.mask[wide[3]:reach, 62:138] != 0).mean() > 0.97
    assert not opened.mask[wide[3]:, wide[0]:58].any()  # dark at the view's edge: stays background
    assert not opened.mask[wide[3]:, 142:].any()
    assert not opened.mask[reach:].any()
    assert not opened.mask[:, :35].any()
    assert opened.confidence is None or opened.confidence[wide[3]:reach, 62:138].min() > 0


def test_the_body_stops_where_another_view_begins(predictor):
    """The first face's body is bright at the bottom of its view; the dark face below it has its own views, and
    the first face's body is not carried on past them."""
    picture = np.zeros((320, 300, 3), np.uint8)
    picture[55:110, 75:125] = 200
    picture[110:141, 60:140] = 180
    lower = (85, 175, 115, 205)
    wide = face_crop_box(FACE, CONTEXT_MARGIN).covered_pixels((300, 320))
    lower_wide = face_crop_box(lower, CONTEXT_MARGIN).covered_pixels((300, 320))
    assert wide[3] < lower_wide[1] and lower_wide[3] < wide[3] + (wide[3] - wide[1])
    opened = predict_image(picture, predictor, Framing(FACES, KnownFaces([FACE, lower])))
    assert (opened.mask[wide[3]:lower_wide[1], 62:138] != 0).all()
    assert not opened.mask[lower_wide[3]:].any()


def test_a_strand_at_the_edge_of_the_view_is_not_drawn_down_the_picture(predictor):
    picture = np.zeros((320, 300, 3), np.uint8)
    picture[55:110, 75:125] = 200
    picture[110:, 60:100] = 180
    picture[100:, 130] = 255  # one bright column: a strand of hair across the view's bottom edge
    wide = face_crop_box(FACE, CONTEXT_MARGIN).covered_pixels((300, 320))
    opened = predict_image(picture, predictor, Framing(FACES, KnownFaces([FACE])))
    assert (opened.mask[wide[3]:wide[3] + 60, 62:98] != 0).mean() > 0.97
    assert not opened.mask[wide[3]:, 110:].any()


def test_narrow_runs_take_the_label_around_them_and_leave_no_gap():
    from faceparse.core.framing import _without_narrow_runs

    row = np.array([0, 0, 5, 5, 5, 5, 3, 3, 0, 1, 1, 1, 255], np.uint8)
    assert _without_narrow_runs(row, 3).tolist() == [0, 0, 5, 5, 5, 5, 5, 5, 1, 1, 1, 1, 1]
    assert _without_narrow_runs(row, 1).tolist() == row.tolist()
    cloth = np.array([18] * 8 + [17] + [18] * 8 + [0] + [18] * 8, np.uint8)
    assert (_without_narrow_runs(cloth, 3) == 18).all()
    assert _without_narrow_runs(np.array([0, 7, 7, 7, 7], np.uint8), 3).tolist() == [0, 7, 7, 7, 7]


def wide_body() -> np.ndarray:
    """A figure whose shoulders run past the wider view's sides, down to the bottom edge."""
    picture = np.zeros((240, 400, 3), np.uint8)
    picture[55:110, 125:175] = 200
    picture[110:, 10:390] = 180
    return picture


WIDE_FACE = (130, 60, 170, 100)


def test_the_widest_view_adds_the_body_beyond_the_wider_views_sides(tmp_path):
    from faceparse.core.framing import BODY_MARGIN

    cloth = Predictor(foreground_model(tmp_path / "cloth.onnx", face_class=18, threshold=0.05), device="cpu")
    picture = wide_body()
    size = (400, 240)
    wider = face_crop_box(WIDE_FACE, CONTEXT_MARGIN).covered_pixels(size)
    widest = face_crop_box(WIDE_FACE, BODY_MARGIN).covered_pixels(size)
    assert widest[0] < wider[0] - 20 and widest[2] > wider[2] + 20
    opened = predict_image(picture, cloth, Framing(FACES, KnownFaces([WIDE_FACE])))
    beside = opened.mask[120:wider[3], widest[0] + 2:wider[0] - 2]
    assert (beside == 18).mean() > 0.95  # the shoulders beside the wider view: clothes
    assert not opened.mask[:100, :widest[0]].any() and not opened.mask[:50].any()
    no_body = Framing(FACES, KnownFaces([WIDE_FACE]))
    prepared = prepare_array(None, picture, no_body.for_model(cloth.info.classes), (64, 64))
    assert prepared.faces == 1 and prepared.context == 2 and prepared.widest == 1


def test_the_widest_view_gives_no_face_parts_and_a_model_without_body_classes_gets_none(tmp_path):
    skin = Predictor(foreground_model(tmp_path / "skin.onnx", face_class=1, threshold=0.05), device="cpu")
    picture = wide_body()
    wider = face_crop_box(WIDE_FACE, CONTEXT_MARGIN).covered_pixels((400, 240))
    opened = predict_image(picture, skin, Framing(FACES, KnownFaces([WIDE_FACE])))
    assert not opened.mask[:wider[3], :wider[0]].any() and not opened.mask[:wider[3], wider[2]:].any()
    mask_model = Predictor(foreground_model(tmp_path / "mask.onnx", schema_name="face-mask"), device="cpu")
    prepared = prepare_array(None, picture, Framing(FACES, KnownFaces([WIDE_FACE])).for_model(mask_model.info.classes),
                             (64, 64))
    assert prepared.context == 1 and prepared.widest == 0


def test_the_body_beyond_the_wider_view_goes_on_below_the_widest_one(tmp_path):
    from faceparse.core.framing import BODY_MARGIN

    cloth = Predictor(foreground_model(tmp_path / "cloth.onnx", face_class=18, threshold=0.05), device="cpu")
    picture = np.zeros((640, 400, 3), np.uint8)
    picture[55:110, 125:175] = 200
    picture[110:, 10:390] = 180
    wider = face_crop_box(WIDE_FACE, CONTEXT_MARGIN).covered_pixels((400, 640))
    widest = face_crop_box(WIDE_FACE, BODY_MARGIN).covered_pixels((400, 640))
    reach = widest[3] + (widest[3] - widest[1])
    assert reach < 620
    opened = predict_image(picture, cloth, Framing(FACES, KnownFaces([WIDE_FACE])))
    assert (opened.mask[widest[3]:reach, widest[0] + 2:wider[0] - 2] == 18).mean() > 0.95
    assert not opened.mask[reach:, :wider[0]].any()  # by one view's height at most, as below the wider view


def test_a_photo_without_a_face_in_faces_mode_is_the_most_uncertain():
    from faceparse.core.faces import FACES, WHOLE_IMAGE
    from faceparse.core.framing import FACELESS_UNCERTAINTY, Framing, finish_image, prepare_array
    from faceparse.core.predictor import UNCERTAINTY_STRIDE, FacePrediction

    class NoFaces:
        def detect(self, image):
            return []

    picture = np.zeros((40, 60, 3), np.uint8)
    prepared = prepare_array(None, picture, Framing(FACES, NoFaces()), (32, 32))
    assert prepared.faceless and prepared.whole_image
    side = len(range(0, 32, UNCERTAINTY_STRIDE))
    probs = np.zeros((2, side, side), np.float32)
    probs[0] = 1.0
    face = FacePrediction(index=np.zeros((32, 32), np.uint8), confidence=None, probs=probs)
    assert finish_image(prepared, [face]).uncertainty == FACELESS_UNCERTAINTY
    whole = prepare_array(None, picture, Framing(WHOLE_IMAGE), (32, 32))
    assert not whole.faceless and finish_image(whole, [face]).uncertainty == 0.0


def test_the_studio_says_when_no_face_was_found():
    from faceparse.core.uncertainty import FACELESS_UNCERTAINTY, uncertainty_words

    assert uncertainty_words(FACELESS_UNCERTAINTY, "faces, margin 0.5").endswith("no face found, the whole photo "
                                                                                 "parsed as one")
    assert uncertainty_words(0.25, "faces, margin 0.5") == "uncertainty 0.250"
    assert uncertainty_words(FACELESS_UNCERTAINTY, "whole image") == "uncertainty 1.000"
    assert uncertainty_words(None, "faces") == ""
