"""The framing a project's pre-labels use is chosen from a sample spread over the whole folder: a few portraits
after many aligned crops (names sorted) are looked at, and turn the project to faces mode."""

import numpy as np
from faceparse.core.faces import FACES, WHOLE_IMAGE
from faceparse.core.prelabel import MODE_SETTING, SUGGESTION_SAMPLE, choose_mode, spread_sample
from faceparse.core.store import ProjectStore
from PIL import Image


class ByShape:
    """One centred face in a square crop; two small faces in a wide photo. Records what it was shown."""

    def __init__(self):
        self.shapes = []

    def detect(self, image):
        h, w = image.shape[:2]
        self.shapes.append((h, w))
        if w == h:
            return [(w // 4, h // 4, 3 * w // 4, 3 * h // 4)]
        return [(2, 2, 12, 12), (w - 14, 2, w - 2, 12)]


def folder(root, crops, photos):
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(crops):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)).save(root / f"crop{i:02d}.png")
    for i in range(photos):
        Image.fromarray(rng.integers(0, 255, (64, 96, 3), np.uint8)).save(root / f"zz_group{i}.png")
    store = ProjectStore.create(root, "celebamask-hq")
    store.scan()
    return store


def test_portraits_at_the_end_of_a_small_folder_are_looked_at(tmp_path):
    store = folder(tmp_path / "mixed", crops=10, photos=2)
    detector = ByShape()
    mode, notice = choose_mode(store, detector=detector)
    assert mode == FACES and store.get_setting(MODE_SETTING) == FACES
    assert (64, 96) in detector.shapes and "has 2 faces, not one face filling the frame" in notice
    store.close()


def test_a_folder_of_crops_only_stays_whole_image(tmp_path):
    store = folder(tmp_path / "crops", crops=12, photos=0)
    detector = ByShape()
    assert choose_mode(store, detector=detector)[0] == WHOLE_IMAGE
    assert len(detector.shapes) == SUGGESTION_SAMPLE
    store.close()


def test_the_sample_spans_the_first_and_the_last_item():
    assert spread_sample(list(range(12)), 8) == [0, 2, 3, 5, 6, 8, 9, 11]
    assert spread_sample(list(range(1000)), 8)[::7] == [0, 999]
    assert spread_sample(list(range(5)), 8) == [0, 1, 2, 3, 4]
    assert spread_sample(list(range(5)), 1) == [0] and spread_sample([], 8) == []
