"""Build (or refresh) the sample project that `make run` opens: two public-domain portraits and drawn faces.

The photos ship in `faceparse/resources/samples/` (Grace Hopper, U.S. Navy photo; the NASA astronaut portrait of
Eileen Collins: both in the public domain). The drawn faces come from the synthetic generator, so nothing in the
sample comes from a research data set. When a starter model ships, every image is pre-labeled with it. Running it
again only picks up what changed.

    python -m faceparse.app.sample_project FOLDER [--faces N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from importlib import resources
from pathlib import Path

from faceparse.core.model_resolver import ModelNotFoundError
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import make_synthetic_folder
from faceparse.core.wording import counted

PHOTOS = ("grace_hopper.jpg", "astronaut.jpg")


def build_sample_project(folder: str | Path, faces: int = 8, size: int = 512, prelabel: bool = True) -> ProjectStore:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    samples = resources.files("faceparse.resources").joinpath("samples")
    for name in PHOTOS:
        target = folder / name
        if not target.exists():
            with resources.as_file(samples.joinpath(name)) as src:
                shutil.copyfile(src, target)
    existing = sorted(folder.glob("synthetic_*.jpg"))
    if len(existing) < faces:
        make_synthetic_folder(folder, faces, size=size, seed=7, only_missing=True)
    store = ProjectStore.open_or_create(folder, schema="celebamask-hq")
    store.scan()
    store.fill_details()
    if prelabel:
        from faceparse.core.prelabel import PrelabelJob

        try:
            result = PrelabelJob(store).run()
            print(f"sample project: {counted(result.predicted, 'image')} pre-labeled on {result.provider}")
        except ModelNotFoundError as error:
            print(f"sample project: not pre-labeled ({error})")
    return store


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--faces", type=int, default=8, help="number of drawn faces")
    ap.add_argument("--no-prelabel", action="store_true")
    args = ap.parse_args(argv)
    store = build_sample_project(args.folder, faces=args.faces, prelabel=not args.no_prelabel)
    counts = store.counts()
    store.close()
    print(f"sample project ready in {args.folder}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
