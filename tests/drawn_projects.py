"""Projects of drawn faces for the training-side tests: real pictures and exact masks in milliseconds."""

import numpy as np
from faceparse.core.faces import FACES, HaarFaceDetector
from faceparse.core.prelabel import MODE_SETTING
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import draw_face, draw_scene
from PIL import Image


def draw_folder(root, count, size=64, seed=0, suffix=".png", **draw) -> list[str]:
    """A folder of `count` drawn faces (`face0<suffix>`, ...), for tests that only need pictures; their names."""
    root.mkdir(parents=True, exist_ok=True)
    names = [f"face{i}{suffix}" for i in range(count)]
    for i, name in enumerate(names):
        Image.fromarray(draw_face(seed + i, size, **draw)[0]).save(root / name)
    return names


def make_project(root, count=10, corrected=8, size=64, schema="lapa", seed=0, **draw):
    """A folder of drawn faces; the first `corrected` get their exact masks as corrections. Returns the open
    store and the masks by file name."""
    root.mkdir(parents=True, exist_ok=True)
    masks = {}
    for i in range(count):
        image, mask = draw_face(seed * 1000 + i, size=size, schema=schema, **draw)
        Image.fromarray(image).save(root / f"face{i:02d}.png")
        masks[f"face{i:02d}.png"] = mask
    store = ProjectStore.create(root, schema)
    store.scan()
    for rec in store.images()[:corrected]:
        store.save_corrected(rec.id, masks[rec.relpath])
    return store, masks


class KnownFaces:
    """The scenes' true face boxes, looked up by picture; counts its calls."""

    def __init__(self, scenes):
        self.scenes = scenes
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        for picture, _, boxes in self.scenes.values():
            if picture.shape == image.shape and np.array_equal(picture, image):
                return list(boxes)
        return []


def haar_reports(scenes, monkeypatch):
    """Make the project's own detector (Haar, any settings) report the scenes' true faces, which the cascades miss
    in drawn pictures; the returned `KnownFaces` counts the searches."""
    known = KnownFaces(scenes)
    monkeypatch.setattr(HaarFaceDetector, "detect", lambda self, image: known.detect(image))
    return known


def draw_scenes(faces_per_photo, first_seed=0, size=(160, 120)):
    """Drawn group photos with exact masks, by file name: (picture, mask, face boxes the detector reports). A
    photo asked for with 0 faces holds one that the detector is made not to find."""
    out = {}
    for seed, faces in enumerate(faces_per_photo, first_seed):
        picture, mask, boxes = draw_scene(seed, size, faces=max(faces, 1), schema="lapa")
        out[f"scene{seed}.png"] = (picture, mask, boxes if faces else [])
    return out


def scene_project(root, scenes, mode=FACES, corrected=None):
    """A LaPa project of `draw_scenes` photos in pre-labeling `mode` (None: not chosen yet); the photos named in
    `corrected` (all when None) have their true masks as corrections."""
    root.mkdir(parents=True, exist_ok=True)
    for name, (picture, _, _) in scenes.items():
        Image.fromarray(picture).save(root / name)
    store = ProjectStore.create(root, "lapa")
    store.scan()
    for record in store.images():
        if corrected is None or record.relpath in corrected:
            store.save_corrected(record.id, scenes[record.relpath][1])
    if mode is not None:
        store.set_setting(MODE_SETTING, mode)
    return store
