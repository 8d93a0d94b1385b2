"""Drawn faces with exact ground-truth masks, for tests, benchmarks and the sample project.

Real face datasets cannot ship with the application and their labels are never perfect, so tests need faces whose
true mask is known exactly. Every part (hair, ears, neck, cloth, skin, brows, eyes, nose, lips, mouth, glasses,
jewellery, hat, face mask) is one shape in a face-centred coordinate frame; each shape is rasterised once and that
one raster paints both the picture and the mask, so the two agree to the pixel. Pose (position, scale, tilt), skin
tone, colours and styles are drawn from a seeded generator: the same seed gives the same face on any machine.

Faces are drawn in CelebAMask-HQ classes plus a face-mask class, then mapped to the requested schema. The subject's
left parts (l_eye, l_brow, l_ear) are on the image's right, as in CelebAMask-HQ.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from faceparse.core.atomic import atomic_write_bytes
from faceparse.core.imageio import save_mask
from faceparse.core.schemas import LabelSchema, SchemaError, get_schema
from PIL import Image

DRAWN_CLASSES = ("background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
                 "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth", "face_mask")
_C = {name: i for i, name in enumerate(DRAWN_CLASSES)}
FACE_CLASSES = frozenset(_C[n] for n in ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "mouth",
                                           "u_lip", "l_lip", "face_mask"))
BACKGROUNDS = ("noise", "plain", "gradient", "none")

SKIN_TONES = ((255, 224, 196), (241, 194, 167), (224, 172, 138), (198, 134, 103), (161, 102, 74), (120, 75, 53),
              (92, 58, 42))
HAIR_COLORS = ((20, 17, 15), (45, 30, 22), (85, 55, 35), (140, 95, 55), (200, 160, 100), (150, 60, 30),
               (170, 170, 170), (235, 225, 200))
IRIS_COLORS = ((60, 40, 25), (95, 65, 35), (60, 100, 140), (70, 110, 70), (110, 110, 120))
LIP_TINTS = ((190, 90, 90), (170, 70, 80), (150, 80, 80), (200, 60, 80), (120, 60, 60))
MASK_COLORS = ((170, 210, 235), (240, 240, 240), (30, 30, 35), (120, 120, 125), (230, 170, 190), (60, 80, 140))
_SHIFT = 4  # sub-pixel bits for cv2.fillPoly
_ONE = 1 << _SHIFT


@dataclass
class _Pose:
    cx: float
    cy: float
    scale: float
    angle: float

    def to_image(self, pts: np.ndarray) -> np.ndarray:
        c, s = math.cos(self.angle), math.sin(self.angle)
        u, v = pts[:, 0], pts[:, 1]
        x = self.cx + self.scale * (c * u - s * v)
        y = self.cy + self.scale * (s * u + c * v)
        return np.stack([x, y], axis=1)


class _Painter:
    """Rasterises shapes once and paints the same pixels into the picture and the mask."""

    def __init__(self, size: int, pose: _Pose, texture: np.ndarray):
        self.size = size
        self.pose = pose
        self.image = np.zeros((size, size, 3), np.float32)
        self.mask = np.zeros((size, size), np.uint8)
        self.texture = texture

    def region(self, *polygons: np.ndarray, lines: tuple[np.ndarray, float] | None = None) -> np.ndarray:
        scratch = np.zeros((self.size, self.size), np.uint8)
        pts = [np.round(self.pose.to_image(p) * _ONE).astype(np.int32) for p in polygons]
        if pts:
            cv2.fillPoly(scratch, pts, 1, lineType=cv2.LINE_8, shift=_SHIFT)
        if lines is not None:
            line, width = lines
            px = np.round(self.pose.to_image(line) * _ONE).astype(np.int32)
            thickness = max(1, int(round(width * self.pose.scale)))
            cv2.polylines(scratch, [px], False, 1, thickness=thickness, lineType=cv2.LINE_8, shift=_SHIFT)
        return scratch.astype(bool)

    def paint(self, region: np.ndarray, color, label: int | None, grain: float = 0.04) -> np.ndarray:
        base = np.asarray(color, np.float32)
        self.image[region] = base * (1.0 + grain * self.texture[region])[:, None]
        if label is not None:
            self.mask[region] = label
        return region

    def tint(self, region: np.ndarray, color, alpha: float) -> None:
        self.image[region] = (1 - alpha) * self.image[region] + alpha * np.asarray(color, np.float32)


def _ellipse(cx: float, cy: float, ax: float, ay: float, t0: float = 0.0, t1: float = 2 * math.pi,
             n: int = 72) -> np.ndarray:
    t = np.linspace(t0, t1, n)
    return np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], axis=1)


def _jitter(rng: np.random.Generator, color, amount: float = 12.0) -> tuple[float, float, float]:
    return tuple(float(np.clip(c + rng.normal(0, amount), 0, 255)) for c in color)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int, channels: int = 1) -> np.ndarray:
    coarse = rng.normal(0, 1, (cells, cells, channels)).astype(np.float32)
    fine = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return fine.reshape(size, size, channels)


def _background(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    base = rng.uniform(30, 225, 3).astype(np.float32)
    if kind == "none":
        return np.zeros((size, size, 3), np.float32)
    if kind == "plain":
        return np.broadcast_to(base, (size, size, 3)).copy()
    if kind == "gradient":
        other = rng.uniform(30, 225, 3).astype(np.float32)
        t = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
        ramp = base * (1 - t) + other * t
        return np.broadcast_to(ramp, (size, size, 3)).copy()
    blobs = _smooth_noise(rng, size, int(rng.integers(3, 8)), 3) * 35.0
    return np.clip(base + blobs, 0, 255)


@dataclass
class _Face:
    """The random choices that make one face: colours, styles, accessories and proportions (face-frame units)."""

    skin: tuple[float, float, float]
    hair_color: tuple[float, float, float]
    iris: tuple[int, int, int]
    lips: tuple[float, float, float]
    cloth_color: np.ndarray
    hair_style: str
    glasses: bool
    sunglasses: bool
    face_mask: bool
    hat: bool
    necklace: bool
    earrings: bool
    ears_hidden: bool
    mouth_open: float
    smile: float
    face_w: float
    face_h: float
    eye_h: float
    eye_y: float
    eye_dx: float
    brow_t: float
    brow_arch: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    hairline: float
    neckline: float
    mask_color: tuple[int, int, int]
    mask_stripes: bool
    lens_shape: str


def _check_options(size: int, background: str) -> None:
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {BACKGROUNDS}, got {background!r}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")


def _random_pose(rng: np.random.Generator, size: int) -> _Pose:
    return _Pose(cx=size * (0.5 + rng.uniform(-0.07, 0.07)), cy=size * (0.46 + rng.uniform(-0.05, 0.05)),
                 scale=size * rng.uniform(0.16, 0.22), angle=math.radians(rng.uniform(-12, 12)))


def _random_face(rng: np.random.Generator, glasses: bool | None, face_mask: bool | None,
                 mask_allowed: bool) -> _Face:
    """Every choice is drawn here, in one fixed order. Whether the schema allows a face mask decides only if a
    wanted mask is worn, never which numbers are drawn, so a seed gives the same face in every schema."""
    skin = _jitter(rng, SKIN_TONES[rng.integers(len(SKIN_TONES))], 8)
    hair_color = _jitter(rng, HAIR_COLORS[rng.integers(len(HAIR_COLORS))], 10)
    iris = IRIS_COLORS[rng.integers(len(IRIS_COLORS))]
    lips = _jitter(rng, LIP_TINTS[rng.integers(len(LIP_TINTS))], 10)
    cloth_color = rng.uniform(20, 235, 3)
    hair_style = rng.choice(["short", "long", "bald", "bun"], p=[0.45, 0.35, 0.1, 0.1])
    has_glasses = bool(rng.random() < 0.25) if glasses is None else bool(glasses)
    sunglasses = bool(rng.random() < 0.2)
    wants_mask = bool(rng.random() < 0.35)
    has_face_mask = (wants_mask and mask_allowed) if face_mask is None else bool(face_mask)
    has_hat = bool(rng.random() < 0.08)
    has_necklace = bool(rng.random() < 0.15)
    has_earrings = bool(rng.random() < 0.15)
    ears_hidden = hair_style == "long" and bool(rng.random() < 0.5)
    mouth_open = float(rng.uniform(0.03, 0.12)) if rng.random() < 0.4 else 0.0
    smile = float(rng.uniform(-0.02, 0.06))
    face_w, face_h = float(rng.uniform(0.92, 1.05)), float(rng.uniform(1.22, 1.4))
    eye_h = float(rng.uniform(0.06, 0.1))
    eye_y, eye_dx = float(rng.uniform(-0.26, -0.16)), float(rng.uniform(0.36, 0.44))
    brow_t = float(rng.uniform(0.05, 0.09))
    brow_arch = float(rng.uniform(0.02, 0.07))
    nose_w = float(rng.uniform(0.8, 1.2))
    mouth_y, mouth_w = float(rng.uniform(0.66, 0.78)), float(rng.uniform(0.26, 0.36))
    hairline = float(rng.uniform(-0.85, -0.55))
    neckline = float(rng.uniform(0.1, 0.6))
    mask_color = MASK_COLORS[rng.integers(len(MASK_COLORS))]
    mask_stripes = bool(rng.random() < 0.25)
    lens_shape = rng.choice(["round", "square"])
    return _Face(skin, hair_color, iris, lips, cloth_color, hair_style, has_glasses, sunglasses, has_face_mask,
                 has_hat, has_necklace, has_earrings, ears_hidden, mouth_open, smile, face_w, face_h, eye_h, eye_y,
                 eye_dx, brow_t, brow_arch, nose_w, mouth_y, mouth_w, hairline, neckline, mask_color, mask_stripes,
                 lens_shape)


def _paint_back_hair(p: _Painter, f: _Face) -> None:
    back = [_ellipse(0, -0.15, f.face_w * 1.13, f.face_h * 1.08)]
    if f.hair_style == "long":
        back.append(np.array([[-1.3, -0.2], [1.3, -0.2], [1.4, 2.3], [-1.4, 2.3]]))
    if f.hair_style == "bun":
        back.append(_ellipse(0, -1.45, 0.45, 0.35))
    p.paint(p.region(*back), f.hair_color, _C["hair"], grain=0.1)


def _paint_neck_and_cloth(p: _Painter, f: _Face) -> None:
    p.paint(p.region(np.array([[-0.42, 0.5], [0.42, 0.5], [0.5, 2.8], [-0.5, 2.8]])),
            tuple(c * 0.9 for c in f.skin), _C["neck"])
    cloth = np.array([[-3.5, 6.0], [-3.5, 2.5], [-2.1, 1.95], [-0.55, 1.8], [0.0, 1.8 + f.neckline], [0.55, 1.8],
                      [2.1, 1.95], [3.5, 2.5], [3.5, 6.0]])
    p.paint(p.region(cloth), f.cloth_color, _C["cloth"], grain=0.1)


def _paint_necklace(p: _Painter) -> None:
    arc = _ellipse(0, 1.35, 0.5, 0.45, 0.15 * math.pi, 0.85 * math.pi, 24)
    p.paint(p.region(lines=(arc, 0.05)), (212, 175, 55), _C["neck_l"], grain=0.2)


def _paint_ears(p: _Painter, f: _Face) -> None:
    for side, label in ((1, "l_ear"), (-1, "r_ear")):
        p.paint(p.region(_ellipse(side * f.face_w * 0.98, -0.05, 0.17, 0.3)), tuple(c * 0.95 for c in f.skin),
                _C[label])
    if f.earrings:
        for side in (1, -1):
            p.paint(p.region(_ellipse(side * f.face_w * 1.0, 0.33, 0.05, 0.05, n=20)), (225, 225, 235),
                    _C["ear_r"], grain=0.1)


def _paint_behind_face(p: _Painter, f: _Face) -> None:
    """What the face covers is painted first: back hair, neck, clothes, necklace, ears and earrings."""
    if f.hair_style != "bald":
        _paint_back_hair(p, f)
    _paint_neck_and_cloth(p, f)
    if f.necklace:
        _paint_necklace(p)
    if not f.ears_hidden:
        _paint_ears(p, f)


def _paint_skin_and_nose(p: _Painter, f: _Face) -> None:
    t = np.linspace(0, 2 * math.pi, 96)
    narrowing = 1 - 0.18 * np.clip(np.sin(t), 0, None) ** 2
    outline = np.stack([f.face_w * np.cos(t) * narrowing, f.face_h * np.sin(t)], axis=1)
    p.paint(p.region(outline), f.skin, _C["skin"])
    nose = np.array([[-0.07, -0.15], [-0.1, 0.15], [-0.2, 0.33], [-0.12, 0.43], [0, 0.45], [0.12, 0.43],
                     [0.2, 0.33], [0.1, 0.15], [0.07, -0.15]]) * [f.nose_w, 1.0]
    p.paint(p.region(nose), tuple(c * 0.9 for c in f.skin), _C["nose"])
    nostrils = [_ellipse(s * 0.08 * f.nose_w, 0.39, 0.04, 0.02, n=16) for s in (1, -1)]
    p.tint(p.region(*nostrils), (40, 20, 20), 0.6)


def _paint_brows(p: _Painter, f: _Face) -> None:
    for side, label in ((1, "l_brow"), (-1, "r_brow")):
        u = np.linspace(-0.22, 0.22, 24)
        arch = -f.brow_arch * np.cos(u / 0.22 * math.pi / 2)
        taper = 1 - 0.5 * (side * u + 0.22) / 0.44
        top = np.stack([side * f.eye_dx + u, f.eye_y - 0.24 + arch - f.brow_t / 2 * taper], axis=1)
        bottom = np.stack([side * f.eye_dx + u, f.eye_y - 0.24 + arch + f.brow_t / 2 * taper], axis=1)
        p.paint(p.region(np.concatenate([top, bottom[::-1]])), tuple(c * 0.8 for c in f.hair_color), _C[label],
                grain=0.1)


def _paint_eyes(p: _Painter, f: _Face) -> None:
    for side, label in ((1, "l_eye"), (-1, "r_eye")):
        tt = np.linspace(0, math.pi, 24)
        upper = np.stack([side * f.eye_dx - 0.19 * np.cos(tt), f.eye_y - f.eye_h * np.sin(tt)], axis=1)
        lower = np.stack([side * f.eye_dx + 0.19 * np.cos(tt), f.eye_y + 0.7 * f.eye_h * np.sin(tt)], axis=1)
        region = p.paint(p.region(np.concatenate([upper, lower])), (238, 236, 230), _C[label], grain=0.02)
        iris_region = region & p.region(_ellipse(side * f.eye_dx, f.eye_y, 0.075, 0.075, n=32))
        p.image[iris_region] = np.asarray(f.iris, np.float32)
        p.image[region & p.region(_ellipse(side * f.eye_dx, f.eye_y, 0.035, 0.035, n=24))] = (15, 12, 12)


def _lip(u: np.ndarray, upper_edge: np.ndarray, lower_edge: np.ndarray) -> np.ndarray:
    return np.concatenate([np.stack([u, upper_edge], 1), np.stack([u[::-1], lower_edge[::-1]], 1)])


def _paint_mouth(p: _Painter, f: _Face) -> None:
    u = np.linspace(-f.mouth_w, f.mouth_w, 41)
    fall = 1 - (u / f.mouth_w) ** 2
    lift = -f.smile * (u / f.mouth_w) ** 2
    bow = 1 - 0.35 * np.exp(-((u / 0.06) ** 2))
    upper_top = f.mouth_y + lift - 0.09 * fall * bow
    upper_bottom = f.mouth_y + lift - f.mouth_open / 2 * fall
    lower_top = f.mouth_y + lift + f.mouth_open / 2 * fall
    lower_bottom = lower_top + 0.12 * np.power(fall, 0.8)
    if f.mouth_open > 0:
        inner = p.paint(p.region(_lip(u, upper_bottom, lower_top)), (95, 25, 35), _C["mouth"], grain=0.1)
        teeth = p.region(_lip(u, upper_bottom, upper_bottom + 0.35 * (lower_top - upper_bottom)))
        p.image[inner & teeth] = (235, 232, 220)
    p.paint(p.region(_lip(u, upper_top, upper_bottom)), f.lips, _C["u_lip"])
    p.paint(p.region(_lip(u, lower_top, lower_bottom)), tuple(c * 1.05 for c in f.lips), _C["l_lip"])


def _paint_front_hair(p: _Painter, f: _Face) -> None:
    cap = _ellipse(0, -0.15, f.face_w * 1.13, f.face_h * 1.08, math.pi, 2 * math.pi, 48)
    uu = np.linspace(f.face_w * 1.13, -f.face_w * 1.13, 48)
    line = f.hairline + 0.35 * (uu / (f.face_w * 1.13)) ** 2
    fringe = np.stack([uu, np.minimum(line, -0.05)], axis=1)
    p.paint(p.region(np.concatenate([cap, fringe])), f.hair_color, _C["hair"], grain=0.1)


def _paint_face(p: _Painter, f: _Face) -> None:
    """The face and its parts, each over the ones before it: skin, nose, brows, eyes, mouth, then the hair over
    the forehead."""
    _paint_skin_and_nose(p, f)
    _paint_brows(p, f)
    _paint_eyes(p, f)
    _paint_mouth(p, f)
    if f.hair_style in ("short", "long", "bun"):
        _paint_front_hair(p, f)


def _lens_outlines(f: _Face) -> list[np.ndarray]:
    lenses = []
    for side in (1, -1):
        if f.lens_shape == "round":
            lenses.append(_ellipse(side * f.eye_dx, f.eye_y, 0.25, 0.2, n=48))
        else:
            cx = side * f.eye_dx
            lenses.append(np.array([[cx - 0.26, f.eye_y - 0.17], [cx + 0.26, f.eye_y - 0.17],
                                    [cx + 0.24, f.eye_y + 0.17], [cx - 0.24, f.eye_y + 0.17]]))
    return lenses


def _glasses_frame(p: _Painter, f: _Face, lenses: list[np.ndarray], like: np.ndarray) -> np.ndarray:
    frame = np.zeros_like(like)
    for lens in lenses:
        frame |= p.region(lines=(np.concatenate([lens, lens[:1]]), 0.035))
    bridge = np.array([[-f.eye_dx + 0.24, f.eye_y - 0.05], [0, f.eye_y - 0.09], [f.eye_dx - 0.24, f.eye_y - 0.05]])
    frame |= p.region(lines=(bridge, 0.035))
    for side in (1, -1):
        frame |= p.region(lines=(np.array([[side * (f.eye_dx + 0.25), f.eye_y - 0.05],
                                           [side * f.face_w * 0.97, f.eye_y - 0.08]]), 0.03))
    return frame


def _keep_seen_through(p: _Painter, before: np.ndarray, see_through: np.ndarray) -> None:
    """Eyes and brows seen through clear lenses keep their own class (CelebAMask-HQ's drawing order)."""
    for label in ("l_eye", "r_eye", "l_brow", "r_brow"):
        keep = see_through & (before == _C[label])
        p.mask[keep] = _C[label]


def _paint_glasses(p: _Painter, f: _Face, rng: np.random.Generator) -> None:
    before = p.mask.copy()
    lenses = _lens_outlines(f)
    lens_region = p.region(*lenses)
    frame = _glasses_frame(p, f, lenses, lens_region)
    frame_color = (20, 20, 25) if rng.random() < 0.6 else (150, 110, 60)
    if f.sunglasses:
        p.tint(lens_region, (25, 25, 30), 0.9)
    else:
        p.tint(lens_region, (200, 220, 235), 0.2)
    p.mask[lens_region] = _C["eye_g"]
    p.paint(frame, frame_color, _C["eye_g"], grain=0.05)
    if not f.sunglasses:
        _keep_seen_through(p, before, lens_region & ~frame)


def _face_mask_cover(p: _Painter, f: _Face) -> np.ndarray:
    top = np.stack([np.linspace(-0.98, 0.98, 24) * f.face_w,
                    0.08 - 0.1 * np.cos(np.linspace(-math.pi / 2, math.pi / 2, 24))], axis=1)
    bottom = np.array([[0.85 * f.face_w, 0.95], [0.45, 1.35], [0, 1.47], [-0.45, 1.35], [-0.85 * f.face_w, 0.95]])
    cover = p.region(np.concatenate([top, bottom]))
    for side in (1, -1):
        loop = np.array([[side * 0.95 * f.face_w, 0.1], [side * 1.08 * f.face_w, -0.1],
                         [side * 1.06 * f.face_w, 0.5], [side * 0.9 * f.face_w, 0.85]])
        cover |= p.region(lines=(loop, 0.025))
    return cover


def _paint_face_mask(p: _Painter, f: _Face) -> None:
    cover = _face_mask_cover(p, f)
    p.paint(cover, f.mask_color, _C["face_mask"], grain=0.05)
    if f.mask_stripes:
        stripes = cover & ((np.arange(p.size)[:, None] // max(2, p.size // 64)) % 2 == 0)
        p.tint(stripes, tuple(255 - c for c in f.mask_color), 0.5)
    for k in (0.45, 0.75, 1.05):
        pleat = np.array([[-0.8 * f.face_w, k], [0.8 * f.face_w, k]])
        p.tint(cover & p.region(lines=(pleat, 0.02)), (0, 0, 0), 0.25)


def _paint_hat(p: _Painter, f: _Face, rng: np.random.Generator) -> None:
    dome = _ellipse(0, -0.6, f.face_w * 1.2, 1.05, math.pi, 2 * math.pi, 48)
    brim = np.array([[-1.45, -0.72], [1.45, -0.72], [1.45, -0.55], [-1.45, -0.55]])
    p.paint(p.region(dome, brim), rng.uniform(20, 235, 3), _C["hat"], grain=0.08)


def _paint_accessories(p: _Painter, f: _Face, rng: np.random.Generator) -> None:
    """Glasses, face mask and hat go over everything else, in that order."""
    if f.glasses:
        _paint_glasses(p, f, rng)
    if f.face_mask:
        _paint_face_mask(p, f)
    if f.hat:
        _paint_hat(p, f, rng)


def _photograph(p: _Painter, rng: np.random.Generator) -> np.ndarray:
    """Light from one side, sensor noise and a little blur, on the picture only: the mask keeps its hard edges."""
    size = p.size
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    light = 1.0 + rng.uniform(0.05, 0.2) * (math.cos(angle) * xx + math.sin(angle) * yy) * 2
    picture = p.image * light[:, :, None]
    sigma = 0.45 * size / 256
    if sigma >= 0.3:
        picture = cv2.GaussianBlur(picture, (0, 0), sigma)
    picture += rng.normal(0, 3.0, picture.shape).astype(np.float32)
    return np.clip(picture, 0, 255)


def _draw(seed: int, size: int, glasses: bool | None, face_mask: bool | None, background: str,
          mask_allowed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Picture (float, 0-255) and mask in DRAWN_CLASSES. All random draws happen in a fixed order, so the picture
    depends only on the seed and the explicit options, never on the target schema."""
    _check_options(size, background)
    rng = np.random.default_rng(seed)
    pose = _random_pose(rng, size)
    p = _Painter(size, pose, _smooth_noise(rng, size, 40)[:, :, 0])
    p.image[:] = _background(rng, size, background)
    face = _random_face(rng, glasses, face_mask, mask_allowed)
    _paint_behind_face(p, face)
    _paint_face(p, face)
    _paint_accessories(p, face, rng)
    return _photograph(p, rng), p.mask


def drawn_to_schema_lut(schema: LabelSchema) -> np.ndarray:
    """How the drawn classes become the schema's classes.

    Built-in schemas go through CelebAMask-HQ's declared mappings (a face mask becomes the schema's face_mask class,
    or background where there is none, as occluders are in CelebAMask-HQ). Any other schema is matched by class
    name, unknown classes becoming background.
    """
    lut = np.zeros(256, np.uint8)
    celeb = get_schema("celebamask-hq")
    mask_class = schema.classes.index("face_mask") if "face_mask" in schema.classes else 0
    if schema.name == celeb.name and schema.classes == celeb.classes:
        lut[:19] = np.arange(19)
    elif schema.name in celeb.mappings and schema == get_schema(schema.name):
        lut[:19] = celeb.mapping_lut(schema.name)[:19]
    else:
        shared = [name for name in DRAWN_CLASSES[1:] if name in schema.classes]
        if not shared:
            raise SchemaError(f"schema {schema.name!r} shares no class with the drawn faces "
                              f"({', '.join(DRAWN_CLASSES[1:])}); cannot draw ground truth for it")
        for i, name in enumerate(DRAWN_CLASSES[:19]):
            lut[i] = schema.classes.index(name) if name in schema.classes else 0
    lut[_C["face_mask"]] = mask_class
    return lut


def draw_face(seed: int, size: int = 256, schema: str | LabelSchema = "celebamask-hq", glasses: bool | None = None,
              face_mask: bool | None = None, background: str = "noise") -> tuple[np.ndarray, np.ndarray]:
    """One drawn face: (HxWx3 uint8 RGB picture, HxW uint8 mask in `schema`).

    glasses / face_mask: True or False force them; None picks at random (a face mask only for schemas that have a
    face_mask class). background: "noise", "plain", "gradient" or "none" (black).
    """
    label_schema = get_schema(schema)
    lut = drawn_to_schema_lut(label_schema)
    picture, drawn = _draw(seed, int(size), glasses, face_mask, background, "face_mask" in label_schema.classes)
    return picture.round().astype(np.uint8), lut[drawn]


def draw_scene(seed: int, size: tuple[int, int] = (640, 480), faces: int = 3,
               schema: str | LabelSchema = "celebamask-hq", background: str = "noise"
               ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int, int]]]:
    """Several faces of different sizes on one canvas: (picture, mask, face boxes as (x0, y0, x1, y1), x1/y1
    exclusive, one per face in drawing order). Faces never overlap."""
    width, height = int(size[0]), int(size[1])
    if width < 32 or height < 32:
        raise ValueError(f"scene must be at least 32x32, got {width}x{height}")
    label_schema = get_schema(schema)
    lut = drawn_to_schema_lut(label_schema)
    rng = np.random.default_rng(seed)
    canvas_rng = np.random.default_rng([seed, 1])
    square = _background(canvas_rng, max(width, height), background)
    picture = square[:height, :width].copy()
    mask = np.zeros((height, width), np.uint8)
    taken: list[tuple[int, int, int, int]] = []
    boxes = []
    short = min(width, height)
    for k in range(int(faces)):
        tile = int(rng.integers(max(32, short // 5), max(33, short // 2 + 1)))
        placed = None
        while placed is None and tile >= 32:
            for _ in range(60):
                x, y = int(rng.integers(0, width - tile + 1)), int(rng.integers(0, height - tile + 1))
                if all(x + tile <= a or a + c <= x or y + tile <= b or b + d <= y for a, b, c, d in taken):
                    placed = (x, y)
                    break
            else:
                tile = int(tile * 0.8)
        if placed is None:
            raise ValueError(f"cannot fit {faces} faces on a {width}x{height} canvas")
        x, y = placed
        face_pic, drawn = _draw(int(rng.integers(2**31)) ^ k, tile, None, None, "none",
                                "face_mask" in label_schema.classes)
        person = drawn > 0
        picture[y:y + tile, x:x + tile][person] = face_pic[person]
        mask[y:y + tile, x:x + tile][person] = lut[drawn][person]
        ys, xs = np.nonzero(np.isin(drawn, list(FACE_CLASSES | {_C["l_ear"], _C["r_ear"]})))
        boxes.append((x + int(xs.min()), y + int(ys.min()), x + int(xs.max()) + 1, y + int(ys.max()) + 1))
        taken.append((x, y, tile, tile))
    return np.clip(picture, 0, 255).round().astype(np.uint8), mask, boxes


def make_synthetic_folder(folder: str | os.PathLike, count: int, size: int = 256, seed: int = 0,
                          schema: str | LabelSchema = "celebamask-hq", masks_folder: str | os.PathLike | None = None,
                          ext: str = ".jpg", prefix: str = "synthetic_", only_missing: bool = False) -> list[Path]:
    """Write `count` drawn faces as images (and, with masks_folder, their masks as same-stem PNGs).

    Image i uses the seed (seed, i), so folders made with different seeds do not repeat faces. With `only_missing`,
    faces already on disk are left as they are (their files, and so their modification times, do not change).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ext = ext if ext.startswith(".") else f".{ext}"
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP", ".tif": "TIFF",
           ".tiff": "TIFF"}.get(ext.lower())
    if fmt is None:
        raise ValueError(f"unsupported image extension {ext!r}")
    label_schema = get_schema(schema)
    paths = []
    for i in range(int(count)):
        path = folder / f"{prefix}{i:05d}{ext}"
        mask_path = None if masks_folder is None else Path(masks_folder) / f"{prefix}{i:05d}.png"
        if only_missing and path.exists() and (mask_path is None or mask_path.exists()):
            paths.append(path)
            continue
        face_seed = int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0])
        picture, mask = draw_face(face_seed, size=size, schema=label_schema)
        buf = io.BytesIO()
        Image.fromarray(picture).save(buf, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
        atomic_write_bytes(path, buf.getvalue())
        if mask_path is not None:
            save_mask(mask_path, mask, label_schema)
        paths.append(path)
    return paths
