"""Face framing: crop boxes, crops and paste-back agree on geometry; larger faces win; Haar finds real faces."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from faceparse.core.faces import (
    FACES,
    WHOLE_IMAGE,
    CropBox,
    HaarFaceDetector,
    crop,
    face_crop_box,
    is_centred_portrait,
    merge_boxes,
    paste_masks,
    suggest_mode,
    whole_image_box,
)
from faceparse.core.framing import Framing, predict_image, prepare_array
from faceparse.core.imageio import load_rgb
from faceparse.core.predictor import Predictor
from faceparse.core.synthetic import draw_scene
from faceparse.resources import __file__ as resources_file
from onnx_models import foreground_model

SAMPLES = Path(resources_file).parent / "samples"


def test_face_crop_box_is_a_centred_square_with_margin():
    box = face_crop_box((100, 50, 140, 110), margin=0.5)
    assert box.width == box.height == 120
    assert ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2) == (120, 80)
    assert face_crop_box((0, 0, 10, 10), margin=0).area == 100



@pytest.mark.parametrize("aspect", [0.75, 4 / 3])
def test_face_crop_box_takes_the_model_inputs_shape(aspect):
    face = (100, 50, 140, 110)
    box = face_crop_box(face, margin=0.5, aspect=aspect)
    assert box.width / box.height == pytest.approx(aspect)
    assert min(box.width, box.height) == pytest.approx(120)
    assert ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2) == pytest.approx((120, 80))
    with pytest.raises(ValueError):
        face_crop_box(face, aspect=0)


def test_faces_are_not_stretched_for_a_non_square_model():
    """A round face cropped for a 64×48 (height × width) model stays round in the crop."""
    picture = np.zeros((300, 400, 3), np.uint8)
    cv2.circle(picture, (200, 150), 40, (255, 255, 255), -1)
    detector = type("Fixed", (), {"detect": lambda self, image: [(160, 110, 240, 190)]})()
    prepared = prepare_array(None, picture, Framing(FACES, detector), (64, 48))
    disc = prepared.crops[0, :, :, 0] > 127
    rows, cols = np.nonzero(disc)
    height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    assert abs(height - width) <= 1, (height, width)


def test_crop_at_scale_one_copies_pixels_and_pads_outside():
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    inside = crop(image, CropBox(10, 5, 26, 21), (16, 16))
    np.testing.assert_array_equal(inside, image[5:21, 10:26])
    corner = crop(image, CropBox(-4, -4, 12, 12), (16, 16))
    assert (corner[:4] == 0).all() and (corner[:, :4] == 0).all()
    np.testing.assert_array_equal(corner[4:, 4:], image[:12, :12])


def test_strong_reduction_is_area_averaged():
    image = np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    small = crop(image, whole_image_box((256, 256)), (64, 64))
    np.testing.assert_array_equal(small, cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA))


@pytest.mark.parametrize("side", [100, 300, 1535])
def test_whole_picture_crops_have_no_dark_fringe(side):
    grey = np.full((side, side, 3), 200, np.uint8)
    framed = crop(grey, whole_image_box((side, side)), (512, 512))
    assert framed.shape == (512, 512, 3)
    assert (framed == 200).all()


def test_paste_inverts_crop():
    """A shape cropped like a face (through `crop`, as pictures are) and pasted back lands where it was."""
    shape = np.zeros((120, 160), np.uint8)
    cv2.circle(shape, (70, 60), 25, 1, -1)
    cv2.rectangle(shape, (60, 40), (95, 50), 1, -1)
    picture = np.repeat(shape[:, :, None] * 255, 3, axis=2)
    for box, size in [(CropBox(30, 20, 110, 100), (80, 80)), (CropBox(30, 20, 110, 100), (64, 64)),
                      (CropBox(-20, -10, 140, 150), (64, 64)), (CropBox(30.5, 20.25, 130.5, 80.25), (48, 96)),
                      (face_crop_box((50, 35, 90, 85)), (96, 96))]:
        cropped = (crop(picture, box, size)[:, :, 0] > 127).astype(np.uint8)
        pasted, _ = paste_masks((160, 120), [box], [cropped])
        x0, y0, x1, y1 = box.covered_pixels((160, 120))
        agree = pasted[y0:y1, x0:x1] == shape[y0:y1, x0:x1]
        exact = box.width == size[1] and box.height == size[0]
        assert agree.mean() > (0.9999 if exact else 0.985), (box, size)
        assert not pasted[:y0].any() and not pasted[:, :x0].any() and not pasted[y1:].any()
        shifted = pasted[y0:y1, x0:x1] == np.roll(shape, 2, axis=1)[y0:y1, x0:x1]
        assert shifted.mean() < agree.mean() - 0.005


def test_overlapping_crops_give_each_pixel_to_the_crop_it_is_most_central_in_and_background_never_erases():
    small_box, large_box = CropBox(0, 0, 20, 20), CropBox(10, 10, 50, 50)
    small = np.full((20, 20), 2, np.uint8)
    large = np.zeros((20, 20), np.uint8)
    large[:5, :5] = 7  # covers image pixels 10..19, where the small face also is
    mask, conf = paste_masks((60, 60), [large_box, small_box], [large, small],
                             [np.full((20, 20), 0.9, np.float32), np.full((20, 20), 0.6, np.float32)])
    assert mask[12, 12] == 2 and conf[12, 12] == pytest.approx(0.6)  # nearer the small crop's centre
    assert mask[19, 19] == 7 and conf[19, 19] == pytest.approx(0.9)  # nearer the large crop's
    assert (mask[:10, :20] == 2).all() and (mask[10:20, :10] == 2).all()  # its background did not erase the small one
    assert (mask[20:50, 20:50] == 0).all()
    assert conf[30, 30] == pytest.approx(0.9) and conf[55, 55] == 1.0


def test_a_neighbours_crop_does_not_take_a_face_from_itself():
    """Two people side by side, the right one a little bigger: its crop reaches over the left face, where it sees
    the edge of its own picture (hair, say). The left face keeps its own skin."""
    faces = [(40, 50, 140, 150), (170, 45, 280, 155)]
    boxes = [face_crop_box(face) for face in faces]
    own_face_and_hair = np.full((64, 64), 13, np.uint8)
    own_face_and_hair[16:48, 16:48] = 1
    mask, _ = paste_masks((400, 200), boxes, [own_face_and_hair, own_face_and_hair])
    for x0, y0, x1, y1 in faces:
        assert (mask[y0 + 5:y1 - 5, x0 + 5:x1 - 5] == 1).all()


def test_box_rows_and_columns_inside_the_picture():
    rows, cols = CropBox(-10, 0, 30, 40).inside_image((100, 20), (40, 40), stride=4)
    assert cols.tolist() == [False, False, False] + [True] * 7
    assert rows.tolist() == [True] * 5 + [False] * 5


def test_merge_drops_the_same_face_found_twice():
    boxes = [(10, 10, 50, 50), (12, 8, 52, 48), (100, 100, 120, 120), (20, 20, 30, 30)]
    assert merge_boxes(boxes) == [(10, 10, 50, 50), (100, 100, 120, 120)]


class KnownFaces:
    def __init__(self, boxes):
        self.boxes = boxes

    def detect(self, image):
        return list(self.boxes)


def test_masks_land_on_the_faces_of_a_synthetic_scene(tmp_path):
    picture, truth, boxes = draw_scene(11, (400, 300), faces=4, background="none")
    predictor = Predictor(foreground_model(tmp_path / "fg.onnx", threshold=0.01), device="cpu", batch_size=3)
    result = predict_image(picture, predictor, Framing(FACES, KnownFaces(boxes), context=False))
    assert result.mask.shape == truth.shape and not result.whole_image and len(result.boxes) == 4
    ring = np.ones((3, 3), np.uint8)
    face = (truth != 0).astype(np.uint8)
    edge = (cv2.dilate(face, ring) > 0) & ~(cv2.erode(face, ring) > 0)
    agree = ((result.mask != 0) == (face != 0)) | edge
    for x0, y0, x1, y1 in boxes:
        assert agree[y0:y1, x0:x1].mean() > 0.995
    assert (cv2.dilate(face, ring) > 0)[result.mask != 0].mean() > 0.995
    assert result.confidence.shape == truth.shape and 0.0 < result.uncertainty < 1.0
    # the same picture without detections is parsed whole
    whole = predict_image(picture, predictor, Framing(FACES, KnownFaces([])))
    assert whole.whole_image and whole.boxes == [whole_image_box((400, 300))]


# --- the Haar detector on real photos -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def haar():
    return HaarFaceDetector()


@pytest.mark.parametrize("name, nose", [("grace_hopper.jpg", (262, 240)), ("astronaut.jpg", (225, 120))])
def test_haar_finds_the_one_face_of_a_real_photo(haar, name, nose):
    image = load_rgb(SAMPLES / name)
    faces = haar.detect(image)
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0]
    assert x0 <= nose[0] < x1 and y0 <= nose[1] < y1
    assert 60 <= x1 - x0 <= 300


def test_haar_finds_nothing_in_a_blank_picture(haar):
    assert haar.detect(np.full((300, 400, 3), 128, np.uint8)) == []


def test_haar_boxes_are_in_the_pictures_own_pixels(haar):
    image = load_rgb(SAMPLES / "grace_hopper.jpg")
    big = cv2.resize(image, (image.shape[1] * 2, image.shape[0] * 2), interpolation=cv2.INTER_LINEAR)
    (a,), (b,) = haar.detect(image), haar.detect(big)
    assert all(abs(2 * u - v) <= 24 for u, v in zip(a, b, strict=True))


def test_missing_cascades_are_reported(tmp_path):
    with pytest.raises(RuntimeError, match="cannot load the face detector cascade"):
        HaarFaceDetector(cascade_dir=tmp_path)


# --- whole-image suggestion -----------------------------------------------------------------------------------------

def test_mode_suggestion():
    pictures = [np.zeros((200, 200, 3), np.uint8)] * 3
    assert suggest_mode(pictures, KnownFaces([]))[0] == WHOLE_IMAGE
    assert suggest_mode(pictures, KnownFaces([(50, 50, 150, 150)]))[0] == WHOLE_IMAGE
    assert suggest_mode(pictures, KnownFaces([(0, 0, 60, 60)]))[0] == FACES
    assert suggest_mode(pictures, KnownFaces([(50, 50, 150, 150), (0, 0, 40, 40)]))[0] == FACES
    assert suggest_mode([], KnownFaces([]))[0] == FACES
    assert is_centred_portrait((60, 60, 140, 140), (200, 200))
    assert not is_centred_portrait((95, 95, 105, 105), (200, 200))


def test_real_portraits_suggest_whole_image_only_when_centred(haar):
    astronaut = load_rgb(SAMPLES / "astronaut.jpg")
    assert suggest_mode([astronaut], haar)[0] == FACES  # her face is in the upper left: a photo, not a crop
    (x0, y0, x1, y1), = haar.detect(astronaut)
    side = 2 * (x1 - x0)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    aligned = astronaut[max(0, cy - side // 2):cy + side // 2, max(0, cx - side // 2):cx + side // 2]
    assert suggest_mode([aligned], haar)[0] == WHOLE_IMAGE


@pytest.mark.parametrize("scale", [2.0, 3.7, 6.0])
def test_a_strongly_reduced_crop_keeps_the_picture_up_to_its_last_row_and_column(scale):
    from faceparse.core.faces import CropBox, crop

    picture = np.full((1000, 1000, 3), 200, np.uint8)
    inside = crop(picture, CropBox(100.0, 100.0, 100 + 64 * scale, 100 + 64 * scale), (64, 64))
    assert (inside == 200).all()
    box = CropBox(1000 - 64 * scale + 30, 500.0, 1000 + 30, 500 + 64 * scale)
    past_edge = crop(picture, box, (64, 64))
    centres = box.x0 + (np.arange(64) + 0.5) * scale
    shown = centres < 1000 - scale
    assert (past_edge[:, shown] == 200).all()
    assert (past_edge[:, centres > 1000 + scale] == 0).all()


def test_a_crop_from_part_of_the_picture_matches_warping_the_whole_one():
    from faceparse.core.faces import CropBox, crop

    rng = np.random.default_rng(3)
    picture = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    for x0, y0, side in [(10.3, 20.7, 90.0), (350.0, 250.0, 120.0), (-30.0, -10.0, 100.0), (100.0, 100.0, 64.0)]:
        box = CropBox(x0, y0, x0 + side, y0 + side)
        whole = cv2.warpAffine(picture, box.image_to_crop((64, 64)), (64, 64), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        assert np.abs(crop(picture, box, (64, 64)).astype(int) - whole.astype(int)).max() <= 1


def test_a_face_in_a_panorama_wider_than_32767_pixels_can_be_cropped():
    from faceparse.core.faces import CropBox, crop

    panorama = np.full((60, 33000, 3), 90, np.uint8)
    out = crop(panorama, CropBox(20000.0, 5.0, 20050.0, 55.0), (64, 64))
    assert out.shape == (64, 64, 3) and (out == 90).all()


def test_a_small_false_find_beside_the_face_does_not_choose_faces_for_a_folder_of_crops():
    crop = np.zeros((200, 200, 3), np.uint8)
    centred = (50, 50, 150, 150)

    class PerPicture:
        def __init__(self, found):
            self.found = list(found)

        def detect(self, image):
            return self.found.pop(0)

    with_speck = [[centred, (170, 10, 200, 40)]] + [[centred]] * 7
    assert suggest_mode([crop] * 8, PerPicture(with_speck))[0] == WHOLE_IMAGE
    group = [[centred]] * 7 + [[centred, (0, 0, 40, 40)]]
    mode, reason = suggest_mode([crop] * 8, PerPicture(group))
    assert mode == FACES and "image 8 of the sample has 2 faces" in reason


def test_a_small_face_in_a_large_photo_is_found_on_a_second_look(haar):
    face = load_rgb(SAMPLES / "grace_hopper.jpg")
    photo = np.full((2400, 3600, 3), 120, np.uint8)
    small = cv2.resize(face, (200, 234), interpolation=cv2.INTER_AREA)
    photo[1000:1234, 1700:1900] = small
    (box,) = haar.detect(photo)
    assert 1700 <= box[0] < box[2] <= 1900 and 1000 <= box[1] < box[3] <= 1234
    assert haar.detect(np.full((2400, 3600, 3), 120, np.uint8)) == []
