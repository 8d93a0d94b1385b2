"""The semi-automatic loop, simulated on real faces: how good are the pre-labels after k labeled faces?

For each k (labeled faces drawn from the train split in one seeded order, so every k contains the smaller ones), a
face parser is fine-tuned for the same number of steps from two starting points, and its pre-labels are scored on the
test split:
  - ImageNet: the ImageNet-initialised DeepLabV3+/MobileNetV2;
  - +MPT: the same network after masked self-supervised pre-training (seeds 000/001) on unlabeled faces — the train
    images without their labels plus the folder of unlabeled faces.
Scores are mIoU and mean F1 over the 18 non-background classes, from one confusion matrix over all test pixels, at the
training resolution (masks resized with nearest neighbour). Same seeds, same steps, same batches for both arms.

Each seed draws its own order of labeled faces, its own pre-training and its own fine-tuning batches; with several
seeds the table shows the mean of each arm and every seed's gain, so a difference can be told from the spread.
`--include` adds the rows of earlier runs with the same settings (their JSON from `--out`).

    python benchmarks/label_efficiency.py --data DATA/celebamask19 --unlabeled DATA/unlabeled --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from faceparse.core.augment import AugmentConfig, augment_pair, resize_pair, to_tensor_array
from faceparse.core.metrics import confusion_matrix, scores_from_confusion
from faceparse.core.pretrain import PretrainConfig, masked_pretrain
from faceparse.core.schemas import get_schema
from faceparse.models.losses import ParsingLoss
from faceparse.models.registry import build_model
from PIL import Image

ARCH = "deeplabv3plus_mobilenetv2"


def read_rgb(path: Path, size: int) -> np.ndarray:
    return resize_pair(np.asarray(Image.open(path).convert("RGB")), None, (size, size))[0]


def load_split(data: Path, split: str, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for r in csv.DictReader(open(data / "split.csv")):
        if r["split"] == split:
            img = read_rgb(next((data / "images").glob(r["stem"] + ".*")), size)
            mask = resize_pair(img, np.asarray(Image.open(data / "masks" / f"{r['stem']}.png")), (size, size))[1]
            out.append((img, mask))
    return out


def fine_tune(model: torch.nn.Module, samples, steps: int, size: int, seed: int, lr: float) -> torch.nn.Module:
    schema = get_schema("celebamask-hq")
    lut = schema.flip_lut()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    loss_fn = ParsingLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    model.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / 20) * 0.5 * (1 + math.cos(math.pi * step / steps))
        pick = rng.integers(0, len(samples), 8)
        xs, ys = [], []
        for i in pick:
            img, m = augment_pair(samples[i][0], samples[i][1], (size, size), rng, AugmentConfig.finetune(), lut)
            xs.append(to_tensor_array(img))
            ys.append(m.astype(np.int64))
        loss = loss_fn(model(torch.from_numpy(np.stack(xs))), torch.from_numpy(np.stack(ys)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model


@torch.no_grad()
def evaluate(model: torch.nn.Module, samples) -> dict:
    model.eval()
    cm = np.zeros((19, 19), dtype=np.int64)
    for i in range(0, len(samples), 16):
        chunk = samples[i:i + 16]
        x = torch.from_numpy(np.stack([to_tensor_array(img) for img, _ in chunk]))
        pred = model(x).argmax(1).numpy()
        for (_, mask), p in zip(chunk, pred, strict=True):
            cm += confusion_matrix(mask, p, 19)
    s = scores_from_confusion(cm)
    return {"miou": 100 * s["miou_no_bg"], "mean_f1": 100 * s["mean_f1_no_bg"], "pixel_acc": 100 * s["pixel_accuracy"]}


SETTINGS = ("size", "steps", "pretrain_steps", "lr")


def earlier_rows(path: Path, args: argparse.Namespace) -> list[dict]:
    """The rows of an earlier run, refused if it used other settings (its seed is in its arguments if the rows
    predate per-row seeds)."""
    earlier = json.loads(path.read_text())
    for name in SETTINGS:
        if float(earlier["args"][name]) != float(getattr(args, name)):
            raise SystemExit(f"{path}: {name} was {earlier['args'][name]}, this run uses {getattr(args, name)}")
    seed = int(earlier["args"].get("seed", earlier["args"].get("seeds", "0").split(",")[0]))
    return [{"seed": seed, **row} for row in earlier["rows"]]


def write_results(args: argparse.Namespace, rows: list[dict], pretrain_minutes: list[float]) -> None:
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                                    "pretrain_minutes": pretrain_minutes}, indent=2))


def results_table(rows: list[dict]) -> str:
    """Per k: each arm's mean over the seeds, the mean gain, and every seed's gain."""
    lines = ["| labeled faces k | seeds | mIoU ImageNet | mIoU +MPT | gain | gain per seed "
             "| mean F1 ImageNet | mean F1 +MPT | gain | gain per seed |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for k in sorted({r["k"] for r in rows}):
        group = sorted((r for r in rows if r["k"] == k), key=lambda r: r["seed"])
        cells = [str(k), ",".join(str(r["seed"]) for r in group)]
        for metric in ("miou", "mean_f1"):
            base = [r["imagenet"][metric] for r in group]
            mpt = [r["mpt"][metric] for r in group]
            gains = [b - a for a, b in zip(base, mpt, strict=True)]
            cells += [f"{np.mean(base):.1f}", f"{np.mean(mpt):.1f}", f"{np.mean(gains):+.1f}",
                      " ".join(f"{g:+.1f}" for g in gains)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--unlabeled", type=Path, default=None)
    ap.add_argument("--ks", default="10,25,50,100,all")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=150, help="fine-tuning steps per run (batch 8)")
    ap.add_argument("--pretrain-steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seeds", default="0", help="comma-separated seeds, each a full run of both arms")
    ap.add_argument("--include", type=Path, nargs="*", default=[],
                    help="JSON results of earlier runs with the same settings, added to the table")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    train = load_split(args.data, "train", args.size)
    test = load_split(args.data, "test", args.size)
    unlabeled = [img for img, _ in train]
    if args.unlabeled:
        unlabeled += [read_rgb(p, args.size) for p in sorted(args.unlabeled.iterdir())
                      if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    print(f"train {len(train)}, test {len(test)}, unlabeled for pre-training {len(unlabeled)}, size {args.size}", flush=True)

    rows = [row for path in args.include for row in earlier_rows(path, args)]
    pretrain_minutes = []
    for seed in (int(x) for x in args.seeds.split(",")):
        order = np.random.default_rng(seed).permutation(len(train))
        t = time.time()
        pre = masked_pretrain(unlabeled, PretrainConfig(architecture=ARCH, input_size=args.size,
                                                        steps=args.pretrain_steps, seed=seed))
        pretrain_minutes.append((time.time() - t) / 60)
        print(f"seed {seed}: masked pre-training {args.pretrain_steps} steps in {pretrain_minutes[-1]:.1f} min",
              flush=True)
        for k_text in args.ks.split(","):
            k = len(train) if k_text == "all" else int(k_text)
            subset = [train[i] for i in order[:k]]
            base = fine_tune(build_model(ARCH, classes=19, pretrained=True), subset, args.steps, args.size, seed,
                             args.lr)
            mpt = fine_tune(pre.make_parser(classes=19), subset, args.steps, args.size, seed, args.lr)
            row = {"k": k, "seed": seed, "imagenet": evaluate(base, test), "mpt": evaluate(mpt, test)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.out:
                write_results(args, rows, pretrain_minutes)

    print(f"\nLabel efficiency: {args.steps} fine-tuning steps per run (batch 8), {args.size} px, "
          f"masked pre-training {args.pretrain_steps} steps on {len(unlabeled)} unlabeled faces; "
          f"test split ({len(test)} faces), 18 classes; this run {(time.time() - t0) / 60:.0f} min\n")
    print(results_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
