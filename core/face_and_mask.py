"""Pre-labeling a masked-faces project with both starter models: the parser for the face, the segmenter for the mask.

A project whose schema has a `face_mask` class among other classes (the masked-faces schema: background, face,
face_mask) is the MFSD paper's own setting, yet no single shipped model speaks it: the face parser knows faces but
not masks, and the face-mask segmenter knows masks but not faces. Until the project trains its own model, both run on
every face and their answers are combined: the parser's classes are mapped to the project's (every facial part
becomes `face`), then the pixels the segmenter calls a mask become `face_mask`. The class probabilities (which the
uncertainty score is computed from) are combined the same way, so they still sum to one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from faceparse.core.predictor import FacePrediction, ModelError, Predictor
from faceparse.core.schemas import LabelSchema, mapping_matrix

MASK_CLASS = "face_mask"


def wants_face_and_mask(schema: LabelSchema) -> bool:
    """Whether a project needs both models: a `face_mask` class that is not the whole of a binary schema."""
    return MASK_CLASS in schema.classes and tuple(schema.classes) != ("background", MASK_CLASS)


def mask_partner(store) -> Path | None:
    """The folder of the face-mask model that joins the starter parser on `store` (a `ProjectStore`): its active
    mask version; None when the project needs no segmenter or has no active one (the starter one joins then)."""
    active = store.active_model("mask") if wants_face_and_mask(store.schema) else None
    return Path(active["path"]) if active is not None and active["path"] is not None else None


class FaceAndMaskPredictor:
    """Looks like a `Predictor` of the project's schema to the prediction pipeline (crops at the parser's input
    size in, per-face masks of the project's classes out)."""

    def __init__(self, parser: Predictor, mask: Predictor, project: LabelSchema, parser_lut: np.ndarray | None):
        if tuple(mask.info.classes) != ("background", MASK_CLASS):
            raise ModelError(f"{mask.info.path}: a face-mask segmenter predicts background and {MASK_CLASS}, "
                             f"not {', '.join(mask.info.classes)}")
        self.parser, self.mask = parser, mask
        n = parser.info.num_classes
        self.lut = np.arange(n, dtype=np.uint8) if parser_lut is None else np.asarray(parser_lut[:n], np.uint8)
        self.mask_index = project.index(MASK_CLASS)
        self._to_project = mapping_matrix(self.lut, n, project.num_classes)
        self.info = replace(parser.info, classes=tuple(project.classes), schema_name=project.name,
                            flip_pairs=tuple(project.flip_pairs))
        self.batch_size = parser.batch_size
        self.provider = parser.provider
        self.device = parser.device
        self.tta = parser.tta
        self.notice = parser.notice or mask.notice

    @property
    def input_size(self) -> tuple[int, int]:
        return self.parser.input_size

    def describe(self) -> str:
        return f"{self.parser.describe()}, with {self.mask.info.path.name} for face masks"

    def predict(self, crops: np.ndarray) -> list[FacePrediction]:
        stack = np.asarray(crops)
        if stack.ndim == 3:
            stack = stack[None]
        faces = self.parser.predict(stack)
        mh, mw = self.mask.input_size
        small = np.stack([cv2.resize(crop, (mw, mh), interpolation=cv2.INTER_AREA) for crop in stack])
        return [self._combine(face, mask) for face, mask in zip(faces, self.mask.predict(small), strict=True)]

    def _combine(self, face: FacePrediction, mask: FacePrediction) -> FacePrediction:
        h, w = face.index.shape
        covered = cv2.resize(mask.index, (w, h), interpolation=cv2.INTER_NEAREST_EXACT) == 1
        index = np.where(covered, np.uint8(self.mask_index), self.lut[face.index])
        confidence = None
        if face.confidence is not None and mask.confidence is not None:
            mask_conf = cv2.resize(mask.confidence, (w, h), interpolation=cv2.INTER_LINEAR)
            confidence = np.where(covered, mask_conf, face.confidence).astype(np.float32)
        probs = None
        if face.probs is not None and mask.probs is not None:
            ph, pw = face.probs.shape[1:]
            masked = np.clip(cv2.resize(mask.probs[1], (pw, ph), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
            probs = np.einsum("tc,chw->thw", self._to_project, face.probs) * (1.0 - masked)
            probs[self.mask_index] += masked
            probs = probs.astype(np.float32)
        return FacePrediction(index=index, confidence=confidence, probs=probs)
