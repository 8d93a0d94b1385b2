"""What remembering each photo's faces saves: the Haar search against a lookup of the faces found before.

A faces-mode project searches every photo for faces at pre-labeling, at each retrain's snapshot, at masked
pre-training and at evaluation; `CachedFaceDetector` searches once and then answers from the project's database
(a digest of the decoded pixels and one row read). Drawn group photos are written into a fresh project; each photo
is searched by the detector alone, then through the cache twice (the first call searches and stores, the second
is a lookup), in turns photo by photo, so a change in the machine's load hits all three.

    python benchmarks/face_search.py [--count 12] [--sizes 1024x768 3000x2000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from faceparse.core.face_cache import CachedFaceDetector
from faceparse.core.faces import HaarFaceDetector
from faceparse.core.imageio import load_rgb
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import draw_scene
from PIL import Image


def ms(run) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1000


def measure(folder: Path, count: int, size: tuple[int, int]) -> tuple[float, float, float]:
    """Median milliseconds per photo: (the search alone, the first call through the cache, a later call)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for seed in range(count):
        picture, _, _ = draw_scene(seed, size, faces=4)
        Image.fromarray(picture).save(folder / f"group{seed:03d}.jpg", quality=92)
    store = ProjectStore.create(folder, "celebamask-hq")
    store.scan()
    detector = HaarFaceDetector()
    cached = CachedFaceDetector(store, detector)
    alone, first, later = [], [], []
    for record in store.images():
        picture = load_rgb(store.root / record.relpath)
        alone.append(ms(lambda picture=picture: detector.detect(picture)))
        first.append(ms(lambda record=record, picture=picture: cached.detect_for(record.id, picture)))
        later.append(ms(lambda record=record, picture=picture: cached.detect_for(record.id, picture)))
    store.close()
    return statistics.median(alone), statistics.median(first), statistics.median(later)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=12, help="photos per size (default 12)")
    parser.add_argument("--sizes", nargs="+", default=["1024x768", "3000x2000"], help="photo sizes, WxH")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "faceparse-face-search")
    args = parser.parse_args(argv)
    print(f"{args.count} drawn group photos per size; median ms per photo\n")
    print("| photo | search | first call (search + store) | later call (lookup) | search ÷ lookup |")
    print("|---|---|---|---|---|")
    for text in args.sizes:
        width, height = (int(v) for v in text.lower().split("x"))
        alone, first, later = measure(args.workdir / text, args.count, (width, height))
        print(f"| {width}×{height} | {alone:.0f} | {first:.0f} | {later:.1f} | {alone / later:.0f} |", flush=True)
    shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
