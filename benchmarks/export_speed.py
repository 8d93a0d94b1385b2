"""Export speed: a project of many small drawn faces exported in every format; prints images per second.

    python benchmarks/export_speed.py [--count 10000] [--size 64] [--formats coco,yolo] [--keep DIR]

Building the project (drawing faces, saving each mask through the store) is not timed. CPU milliseconds per image
that grow with --count would mean per-image work that grows with the dataset; wall-clock rates also depend on
the disk (every file is fsynced before the dataset appears) and on other programs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from faceparse.core.export import export_dataset
from faceparse.core.formats import format_names
from faceparse.core.imageio import load_mask
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import make_synthetic_folder


def build_project(folder: Path, count: int, size: int) -> ProjectStore:
    masks = folder.parent / "truth"
    make_synthetic_folder(folder, count, size=size, seed=11, masks_folder=masks, ext=".png")
    store = ProjectStore.create(folder)
    store.scan()
    for rec in store.images():
        store.save_corrected(rec.id, load_mask(masks / f"{Path(rec.relpath).stem}.png"))
    return store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--formats", default=",".join(format_names()))
    parser.add_argument("--keep", type=Path, help="build the project here and keep it (reused when present)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="export-speed-"))
    folder = (args.keep or work) / "faces"
    started = time.perf_counter()
    store = ProjectStore.open(folder) if ProjectStore.is_project(folder) else build_project(folder, args.count,
                                                                                            args.size)
    count = store.count("corrected")
    print(f"project of {count:,} images of {args.size}x{args.size} ready in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    print("| format | images | seconds | images/s | CPU ms/image |\n|---|---:|---:|---:|---:|")
    try:
        for name in args.formats.split(","):
            out = work / f"out-{name}"
            started, cpu = time.perf_counter(), time.process_time()
            result = export_dataset(store, out, name, progress=None)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(f"| {name} | {result.count:,} | {seconds:.1f} | {result.count / seconds:,.0f} | "
                  f"{1000 * cpu / result.count:.1f} |", flush=True)
            shutil.rmtree(out)
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
