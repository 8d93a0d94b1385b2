"""Would a per-class offset on the parser's log-probabilities raise its mean F1? Fits one offset per class and scores it.

Argmax decides each pixel for the most likely class, which is not what maximises a rare class's F1: a class of a few
hundred pixels per face (earrings, necklaces) gains recall faster than it loses precision when its scores are
nudged up. This script fits one additive offset per class on the log-probabilities by coordinate ascent on mean F1
over the 18 face classes, on the faces of `--fit` (the training split: the test faces never choose the offsets),
and scores the held-out test faces with and without them.

Fitting runs at `--fit-size` (the masks downsampled by nearest neighbour) to keep every face's probabilities in
memory; the test faces are scored at their masks' full resolution, as `train_starter_parser.py` scores them.
`--oracle` also fits on the test faces themselves: an upper bound on what offsets can do, not a result.

    python benchmarks/parser_class_bias.py --data DATA/celebamask19 resources/models/parser/model.safetensors
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
import torch.nn.functional as F
from faceparse.core.augment import resize_pair, to_tensor_array
from faceparse.core.metrics import confusion_matrix, scores_from_confusion

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parser_ensemble import load_model  # noqa: E402
from train_starter_parser import CLASSES, canonical_sides, flip_lut, load_split  # noqa: E402

STEPS = (-1.5, -1.0, -0.6, -0.3, -0.15, 0.15, 0.3, 0.6, 1.0, 1.5, 2.0)


@torch.no_grad()
def log_probabilities(model: torch.nn.Module, img: np.ndarray, size: int, out: tuple[int, int], tta: bool,
                      lut: torch.Tensor) -> torch.Tensor:
    """(classes, H, W) log of the class probabilities at `out`, averaged with the mirrored face's under `tta`."""
    x, _ = resize_pair(img, None, (size, size))
    xt = torch.from_numpy(to_tensor_array(x))[None].contiguous(memory_format=torch.channels_last)
    prob = model(xt).softmax(1)
    if tta:
        prob = (prob + model(xt.flip(3)).softmax(1).flip(3)[:, lut]) / 2
    prob = F.interpolate(prob, size=out, mode="bilinear", align_corners=False)
    return prob[0].clamp_min(1e-8).log()


def mean_f1(cm: np.ndarray) -> float:
    return scores_from_confusion(cm, CLASSES)["mean_f1_no_bg"]


def confusion(logp: list[torch.Tensor], masks: list[np.ndarray], offsets: torch.Tensor) -> np.ndarray:
    n = len(CLASSES)
    cm = np.zeros((n, n), np.int64)
    for lp, mask in zip(logp, masks, strict=True):
        cm += confusion_matrix(mask, (lp.float() + offsets[:, None, None]).argmax(0).numpy(), n)
    return cm


def fit_offsets(logp: list[torch.Tensor], masks: list[np.ndarray], rounds: int) -> tuple[torch.Tensor, float]:
    """Coordinate ascent: each round tries every step on every class in turn and keeps what raises mean F1."""
    offsets = torch.zeros(len(CLASSES))
    best = mean_f1(confusion(logp, masks, offsets))
    print(f"fit start: mean F1 {100 * best:.2f}", file=sys.stderr, flush=True)
    for r in range(rounds):
        improved = False
        for c in range(1, len(CLASSES)):
            for step in STEPS:
                trial = offsets.clone()
                trial[c] += step
                score = mean_f1(confusion(logp, masks, trial))
                if score > best + 1e-5:
                    best, offsets, improved = score, trial, True
        print(f"fit round {r + 1}: mean F1 {100 * best:.2f}; offsets "
              + ", ".join(f"{CLASSES[c]} {offsets[c]:+.2f}" for c in range(1, len(CLASSES)) if offsets[c]),
              file=sys.stderr, flush=True)
        if not improved:
            break
    return offsets, best


def outputs(model, samples, size: int, out: int | None, tta: bool) -> tuple[list[torch.Tensor], list[np.ndarray]]:
    lut = torch.from_numpy(flip_lut(len(CLASSES))[: len(CLASSES)].astype(np.int64))
    logp, masks = [], []
    for i, (_, img, mask) in enumerate(samples, 1):
        shape = mask.shape if out is None else (out, out)
        logp.append(log_probabilities(model, img, size, shape, tta, lut).half())
        if out is not None:
            step = mask.shape[0] // out
            mask = mask[step // 2::step, step // 2::step][:out, :out]
        masks.append(np.ascontiguousarray(mask))
        if i % 50 == 0 or i == len(samples):
            print(f"{i}/{len(samples)} faces", file=sys.stderr, flush=True)
    return logp, masks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--size", type=int, default=512, help="input size of the network")
    ap.add_argument("--fit", default="train", help="split whose faces choose the offsets (default train)")
    ap.add_argument("--fit-size", type=int, default=128, help="mask resolution the offsets are fitted at")
    ap.add_argument("--fit-limit", type=int, default=0, help="fit on the first N faces only")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N test faces (smoke runs)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tta", action="store_true", help="average with the mirrored face (flip TTA)")
    ap.add_argument("--oracle", action="store_true", help="also fit on the test faces (an upper bound)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("checkpoint", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint)
    started = time.perf_counter()

    fit = load_split(args.data, args.fit)
    if args.fit == "train":
        canonical_sides(fit)
    if args.fit_limit:
        fit = fit[: args.fit_limit]
    fit_logp, fit_masks = outputs(model, fit, args.size, args.fit_size, args.tta)
    offsets, fitted = fit_offsets(fit_logp, fit_masks, args.rounds)
    del fit_logp, fit_masks

    test = load_split(args.data, "test")[: args.limit or None]
    test_logp, test_masks = outputs(model, test, args.size, None, args.tta)
    rows = [("none", torch.zeros(len(CLASSES))), (f"fitted on {len(fit)} {args.fit} faces", offsets)]
    if args.oracle:
        small = [F.interpolate(lp[None].float(), size=(args.fit_size,) * 2, mode="bilinear", align_corners=False)[0]
                 for lp in test_logp]
        step = test_masks[0].shape[0] // args.fit_size
        oracle, _ = fit_offsets(small, [m[step // 2::step, step // 2::step] for m in test_masks], args.rounds)
        rows.append(("oracle: fitted on the test faces (upper bound)", oracle))

    print(f"\n{len(test)} test faces at {args.size} px{', flip TTA' if args.tta else ''}; means over the "
          f"{len(CLASSES) - 1} face classes; fit mean F1 {100 * fitted:.2f} at {args.fit_size} px; "
          f"{time.perf_counter() - started:.0f} s\n")
    print("| offsets | mean F1 | mIoU | pixel accuracy | ear_r F1 | neck_l F1 |")
    print("|---|---|---|---|---|---|")
    for name, off in rows:
        s = scores_from_confusion(confusion(test_logp, test_masks, off), CLASSES)
        f1 = s["per_class_f1"]
        print(f"| {name} | {100 * s['mean_f1_no_bg']:.2f} | {100 * s['miou_no_bg']:.2f} | "
              f"{100 * s['pixel_accuracy']:.2f} | {100 * (f1['ear_r'] or 0):.1f} | {100 * (f1['neck_l'] or 0):.1f} |")
    print("\noffsets: " + ", ".join(f"{CLASSES[c]} {offsets[c]:+.2f}" for c in range(len(CLASSES)) if offsets[c]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
