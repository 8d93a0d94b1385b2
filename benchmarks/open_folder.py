"""How fast a large folder opens: time until the image list can be shown, and how fast a re-scan is.

Generates a folder of tiny images (a few encoded PNG/JPEG files copied byte for byte, so 100k files take seconds),
then measures:
  - first open: create the project, scan, list the first page   (target: under 3 s for 100k on 2 cores)
  - second open of the unchanged folder
  - filtering the list by part of a name (Ctrl+F in the studio): count and first page
  - re-scan after a fraction of the files changed               (default 1%)
  - the lazy passes that follow in the background: sizes + content hashes, and thumbnails (measured on a sample
    and extrapolated to the whole folder)

Usage: python benchmarks/open_folder.py [--count 100000] [--folder DIR] [--keep]
Timings are with a warm file-system cache (the files were just written). The CPU column is this process's own CPU
time: on a shared machine, wall time above it is time spent waiting for a core or for the disk.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from faceparse.core.store import ProjectStore
from faceparse.core.thumbnails import ThumbnailCache
from PIL import Image


def tiny_images() -> list[tuple[str, bytes]]:
    """A handful of small encoded images; the folder is made of copies of these bytes."""
    out = []
    for k in range(8):
        img = Image.new("RGB", (24 + k, 20), (30 * k, 255 - 30 * k, 90))
        img.paste((200, 40 + 20 * k, 10), (4, 4, 12, 12))
        buf = io.BytesIO()
        fmt, ext = ("PNG", ".png") if k % 2 == 0 else ("JPEG", ".jpg")
        img.save(buf, fmt)
        out.append((ext, buf.getvalue()))
    return out


def generate(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    templates = tiny_images()
    paths = []
    for i in range(count):
        ext, data = templates[i % len(templates)]
        path = folder / f"face_{i:06d}{ext}"
        with open(path, "wb") as f:
            f.write(data)
        paths.append(path)
    return paths


def change_some(paths: list[Path], fraction: float) -> int:
    """Rewrite every n-th file with other bytes (size and mtime change, as after an edit)."""
    step = max(1, round(1 / fraction)) if fraction > 0 else 0
    if not step:
        return 0
    changed = 0
    for path in paths[::step]:
        with open(path, "ab") as f:
            f.write(b"\0" * 16)
        changed += 1
    return changed


def timed(fn):
    """(value, wall seconds); the CPU seconds of the call are kept in timed.cpu for the table."""
    start, cpu = time.perf_counter(), time.process_time()
    value = fn()
    timed.cpu = time.process_time() - cpu
    return value, time.perf_counter() - start


timed.cpu = 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000, help="number of images (default 100000)")
    parser.add_argument("--folder", type=Path, help="where to generate the images (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated folder")
    parser.add_argument("--changed", type=float, default=0.01, help="fraction of files changed before the re-scan")
    parser.add_argument("--sample", type=int, default=2000, help="images used to measure the lazy passes")
    args = parser.parse_args(argv)

    base = args.folder or Path(tempfile.mkdtemp(prefix="faceparse-bench-"))
    folder = base / "images" if args.folder is None else base
    if ProjectStore.is_project(folder) or (folder.exists() and any(folder.iterdir())):
        print(f"{folder} is not empty; give an empty or new --folder", file=sys.stderr)
        return 2
    rows: list[tuple[str, str, float, float]] = []
    try:
        paths, seconds = timed(lambda: generate(folder, args.count))
        rows.append(("generate tiny image files", f"{args.count:,}", seconds, timed.cpu))

        def first_open():
            store = ProjectStore.open_or_create(folder)
            store.scan()
            page = store.images(limit=200)
            counts = store.counts()
            return store, page, counts

        (store, page, counts), seconds = timed(first_open)
        assert sum(counts.values()) == args.count and len(page) == min(200, args.count)
        rows.append(("first open: create + scan + first page", f"{args.count:,}", seconds, timed.cpu))
        store.close()

        def reopen():
            s = ProjectStore.open(folder)
            result = s.scan()
            s.images(limit=200)
            return s, result

        (store, result), seconds = timed(reopen)
        assert result.unchanged == args.count
        rows.append(("second open, nothing changed", f"{args.count:,}", seconds, timed.cpu))

        def find_by_name():
            text = "_0123"  # face_012300 to face_012399 in a folder of 100,000
            return store.count(path_contains=text), store.images(path_contains=text, limit=200)

        (found, listed), seconds = timed(find_by_name)
        assert len(listed) == min(found, 200)
        rows.append(("filter the list by name: count + first page", f"{found:,} found", seconds, timed.cpu))

        time.sleep(0.01)
        changed = change_some(paths, args.changed)
        result, seconds = timed(store.scan)
        assert result.changed == changed, result
        rows.append((f"re-scan with {args.changed:.0%} of files changed", f"{changed:,} changed", seconds, timed.cpu))

        sample = min(args.sample, args.count)
        done, seconds = timed(lambda: store.fill_details(limit=sample))
        scale = args.count / max(done, 1)
        rows.append(("lazy sizes + hashes (sample)", f"{done:,}", seconds, timed.cpu))
        rows.append(("  extrapolated to the whole folder", f"{args.count:,}", seconds * scale, timed.cpu * scale))

        thumbs = ThumbnailCache(store)
        records = store.images(limit=min(500, args.count))
        (made, _failed), seconds = timed(lambda: thumbs.generate(records))
        scale = args.count / max(made, 1)
        rows.append(("lazy thumbnails (sample)", f"{made:,}", seconds, timed.cpu))
        rows.append(("  extrapolated to the whole folder", f"{args.count:,}", seconds * scale, timed.cpu * scale))
        store.close()
    finally:
        if not args.keep and args.folder is None:
            shutil.rmtree(base, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    n_width = max(len("images"), *(len(r[1]) for r in rows))
    print(f"open_folder benchmark: {args.count:,} images, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at the end: {load:.1f}")
    print(f"| {'step':<{width}} | {'images':>{n_width}} | {'seconds':>8} | {'CPU s':>8} |")
    print(f"|{'-' * (width + 2)}|{'-' * (n_width + 2)}|{'-' * 10}|{'-' * 10}|")
    for step, n, seconds, cpu in rows:
        print(f"| {step:<{width}} | {n:>{n_width}} | {seconds:>8.2f} | {cpu:>8.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
