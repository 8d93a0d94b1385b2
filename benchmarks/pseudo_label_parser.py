"""Pseudo-label unlabeled faces with a trained parser, for self-training the starter parser on more faces.

The parser sees each face at 512 px with flip test-time augmentation (the left/right classes swapped back), and a
pixel keeps its label only when the averaged probability of its class reaches `--threshold`; the rest become 255,
which training ignores. Regions a second mask marks as not belonging to any parser class (a face mask drawn over
the mouth and nose, say) can be ignored too with `--ignore-region MASKS_DIR:CLASS`.

Writes `OUT/images/<stem>.png`, `OUT/masks/<stem>.png` and `OUT/split.csv` (every face in `train`), the layout
`train_starter_parser.py --extra` reads.

    python benchmarks/pseudo_label_parser.py --weights runs/parser/last.safetensors --out DATA/pseudo \\
        DATA/unlabeled DATA/maskedfaces3/images --only-split DATA/maskedfaces3/split.csv:train \\
        --ignore-region DATA/maskedfaces3/masks:2
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from faceparse.core.augment import resize_pair, to_tensor_array
from PIL import Image
from safetensors.torch import load_file
from train_starter_parser import build, flip_lut

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def images_in(folders: list[Path], skip: set[str]) -> list[Path]:
    found = []
    for folder in folders:
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES and p.stem not in skip:
                found.append(p)
    return found


@torch.no_grad()
def pseudo_label(model, img: np.ndarray, size: int, threshold: float) -> tuple[np.ndarray, float]:
    """The label map (255 where unsure) and the share of pixels that kept a label."""
    lut = torch.from_numpy(flip_lut(19)[:19].astype(np.int64))
    x, _ = resize_pair(img, None, (size, size))
    xt = torch.from_numpy(to_tensor_array(x))[None].contiguous(memory_format=torch.channels_last)
    prob = model(xt).softmax(1)
    prob = (prob + model(xt.flip(3)).softmax(1).flip(3)[:, lut]) / 2
    conf, label = prob[0].max(0)
    out = label.numpy().astype(np.uint8)
    out[conf.numpy() < threshold] = 255
    return out, float((out != 255).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", type=Path, nargs="+", help="folders of face images")
    ap.add_argument("--weights", type=Path, required=True, help="parser weights (safetensors, 19 classes)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--only-split", default="", help="CSV:SPLIT, leave out the stems the CSV puts in another split")
    ap.add_argument("--ignore-region", default="", help="MASKS_DIR:CLASS, label pixels of that class 255 in the "
                    "faces that have a mask there")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    skip: set[str] = set()
    if args.only_split:
        path, split = args.only_split.rsplit(":", 1)
        skip = {r["stem"] for r in csv.DictReader(open(path)) if r["split"] != split}
    region_dir, region_class = (None, 0)
    if args.ignore_region:
        d, c = args.ignore_region.rsplit(":", 1)
        region_dir, region_class = Path(d), int(c)

    model = build(19, pretrained=False).to(memory_format=torch.channels_last)
    model.load_state_dict({k: v.float() for k, v in load_file(args.weights).items()})
    model.eval()

    (args.out / "images").mkdir(parents=True, exist_ok=True)
    (args.out / "masks").mkdir(parents=True, exist_ok=True)
    paths = images_in(args.folders, skip)
    kept, rows = [], []
    for n, p in enumerate(paths):
        img = np.asarray(Image.open(p).convert("RGB"))
        if img.shape[:2] != (args.size, args.size):
            img = np.asarray(Image.fromarray(img).resize((args.size, args.size), Image.BICUBIC))
        label, share = pseudo_label(model, img, args.size, args.threshold)
        if region_dir is not None and (region_dir / f"{p.stem}.png").exists():
            region = np.asarray(Image.open(region_dir / f"{p.stem}.png").resize((args.size, args.size), Image.NEAREST))
            label[region == region_class] = 255
            share = float((label != 255).mean())
        Image.fromarray(img).save(args.out / "images" / f"{p.stem}.png")
        Image.fromarray(label).save(args.out / "masks" / f"{p.stem}.png")
        rows.append({"stem": p.stem, "split": "train"})
        kept.append(share)
        if n % 50 == 0:
            print(f"{n + 1}/{len(paths)} {p.name}: {100 * share:.1f}% labeled", flush=True)
    with open(args.out / "split.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["stem", "split"])
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} faces pseudo-labeled; labeled share of pixels: mean {100 * np.mean(kept):.1f}%, "
          f"lowest {100 * np.min(kept):.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
