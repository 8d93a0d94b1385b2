"""How high can any parser score on the published test masks? The ceiling their left/right labels set.

CelebAMask-HQ names the person's sides: `l_eye` lies on the image's right in most faces, but some masks name the
sides the other way round, with nothing in the photo to tell them apart. A parser that learns the data set's
convention perfectly still disagrees with those masks on the eyes, brows and ears. This scores exactly that
parser, the test masks themselves with their mirrored faces' sides swapped to the common convention, against the
test masks as published, with the same confusion matrix and means as `train_starter_parser.py`. No network runs.

    python benchmarks/parser_label_ceiling.py --data DATA/celebamask19
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from faceparse.core.metrics import confusion_matrix, scores_from_confusion

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_starter_parser import CLASSES, flip_lut, load_split, mirrored_sides  # noqa: E402


def ceiling(samples) -> tuple[dict, int]:
    """Scores of the perfect convention-following parser, and how many masks name the sides mirrored."""
    lut = flip_lut(len(CLASSES))
    cm = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    mirrored = 0
    for _, _, mask in samples:
        flipped = mirrored_sides(mask)
        mirrored += flipped
        cm += confusion_matrix(mask, lut[mask] if flipped else mask, len(CLASSES))
    return scores_from_confusion(cm, CLASSES), mirrored


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    samples = load_split(args.data, args.split)
    scores, mirrored = ceiling(samples)
    print(f"{len(samples)} {args.split} faces, {mirrored} of them with mirrored left/right labels; "
          "means over the 18 non-background classes\n")
    print("| class | F1 | IoU |\n|---|---|---|")
    for c in CLASSES[1:]:
        f1, iou = scores["per_class_f1"][c], scores["per_class_iou"][c]
        if f1 is not None and f1 < 1:
            print(f"| {c} | {100 * f1:.1f} | {100 * iou:.1f} |")
    print("| all other classes | 100.0 | 100.0 |")
    print(f"| **mean (18 classes)** | **{100 * scores['mean_f1_no_bg']:.2f}** | **{100 * scores['miou_no_bg']:.2f}** |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
