"""Shared synthetic projects for the export/import tests (no tests of its own).

A project of drawn faces with known masks: square and non-square pictures, one in a subfolder, in every status,
so that exports and imports can be compared with the exact ground truth.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from faceparse.core.store import ProjectStore, natural_sort_key
from faceparse.core.synthetic import draw_face
from PIL import Image

STATUS_PLAN = ("reviewed",) * 4 + ("corrected",) * 4 + ("predicted",) * 2 + ("new",) * 2
MODEL_VERSION = "v0001"


def _faces(count: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    faces = []
    for i in range(count):
        size = 96 if i % 3 else 64
        picture, mask = draw_face(1000 + i, size=size)
        if i % 4 == 1:
            picture, mask = picture[:, : size * 3 // 4], mask[:, : size * 3 // 4]
        name = f"a/face{i:02d}.png" if i == 5 else f"face{i:02d}.png"
        faces.append((name, picture, mask))
    return faces


def write_images(folder: Path, count: int = len(STATUS_PLAN)) -> dict[str, np.ndarray]:
    """Pictures in `folder`; returns the true mask of each by relative path."""
    truth = {}
    for name, picture, mask in _faces(count):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture).save(path)
        truth[name] = mask
    return truth


def make_project(folder: Path, statuses=STATUS_PLAN) -> dict[str, np.ndarray]:
    """A celebamask-hq project whose masks are the truth, with images in the given statuses (by name order)."""
    truth = write_images(folder, len(statuses))
    with ProjectStore.create(folder) as store:
        store.scan()
        store.add_model_version("parser", MODEL_VERSION, None, {"miou": 0.5})
        for rec, status in zip(store.images(), statuses, strict=True):
            mask = truth[rec.relpath]
            if status == "predicted":
                store.save_predicted(rec.id, mask, MODEL_VERSION)
            elif status in ("corrected", "reviewed"):
                store.save_predicted(rec.id, np.zeros_like(mask), MODEL_VERSION)
                store.save_corrected(rec.id, mask)
                if status == "reviewed":
                    store.set_status(rec.id, "reviewed")
    return truth


def copy_images(source: Path, target: Path, schema="celebamask-hq") -> ProjectStore:
    """A fresh project on a copy of the pictures (without the source's project data)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".faceparse"))
    store = ProjectStore.create(target, schema)
    store.scan()
    return store


def statuses_of(store: ProjectStore) -> dict[str, str]:
    return {r.relpath: r.status for r in store.images()}


def exported(statuses=STATUS_PLAN, only="all") -> set[str]:
    from faceparse.core.export import SELECTIONS

    names = sorted((name for name, _, _ in _faces(len(statuses))), key=natural_sort_key)
    return {n for n, s in zip(names, statuses, strict=True) if s in SELECTIONS[only]}


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


def class_ious(truth: np.ndarray, got: np.ndarray, min_pixels: int = 30) -> dict[int, float]:
    out = {}
    for c in np.unique(truth):
        t, g = truth == c, got == c
        if t.sum() >= min_pixels:
            out[int(c)] = float((t & g).sum() / (t | g).sum())
    return out
