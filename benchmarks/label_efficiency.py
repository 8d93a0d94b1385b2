"""The semi-automatic loop, simulated on real faces: how good are the pre-labels after k labeled faces?

For each k (labeled faces drawn from the train split in one seeded order, so every k contains the smaller ones), a
face parser is fine-tuned for the same number of steps from two starting points, and its pre-labels are scored on the
test split:
  - ImageNet: the ImageNet-initialised DeepLabV3+/MobileNetV2;
  - +MPT: the same network after masked self-supervised pre-training (seeds 000/001) on unlabeled faces — the train
    images without their labels plus the folder of unlabeled faces.
Scores are mIoU and mean F1 over the 18 non-background classes, from one confusion matrix over all test pixels, at the
training resolution (masks resized with nearest neighbour). Same seeds, same steps, same batches for both arms.

    python benchmarks/label_efficiency.py --data DATA/celebamask19 --unlabeled DATA/unlabeled
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--unlabeled", type=Path, default=None)
    ap.add_argument("--ks", default="10,25,50,100,all")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=150, help="fine-tuning steps per run (batch 8)")
    ap.add_argument("--pretrain-steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    train = load_split(args.data, "train", args.size)
    test = load_split(args.data, "test", args.size)
    order = np.random.default_rng(args.seed).permutation(len(train))
    unlabeled = [img for img, _ in train]
    if args.unlabeled:
        unlabeled += [read_rgb(p, args.size) for p in sorted(args.unlabeled.iterdir())
                      if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    print(f"train {len(train)}, test {len(test)}, unlabeled for pre-training {len(unlabeled)}, size {args.size}", flush=True)

    t = time.time()
    pre = masked_pretrain(unlabeled, PretrainConfig(architecture=ARCH, input_size=args.size,
                                                    steps=args.pretrain_steps, seed=args.seed))
    pretrain_minutes = (time.time() - t) / 60
    print(f"masked pre-training: {args.pretrain_steps} steps in {pretrain_minutes:.1f} min", flush=True)

    rows = []
    for k_text in args.ks.split(","):
        k = len(train) if k_text == "all" else int(k_text)
        subset = [train[i] for i in order[:k]]
        base = fine_tune(build_model(ARCH, classes=19, pretrained=True), subset, args.steps, args.size, args.seed, args.lr)
        mpt = fine_tune(pre.make_parser(classes=19), subset, args.steps, args.size, args.seed, args.lr)
        row = {"k": k, "imagenet": evaluate(base, test), "mpt": evaluate(mpt, test)}
        rows.append(row)
        print(json.dumps(row), flush=True)

    print(f"\nLabel efficiency: {args.steps} fine-tuning steps per run (batch 8), {args.size} px, "
          f"masked pre-training {args.pretrain_steps} steps on {len(unlabeled)} unlabeled faces; "
          f"test split ({len(test)} faces), 18 classes; total {(time.time() - t0) / 60:.0f} min\n")
    print("| labeled faces k | mIoU ImageNet | mIoU +MPT | gain | mean F1 ImageNet | mean F1 +MPT | gain |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        a, b = r["imagenet"], r["mpt"]
        print(f"| {r['k']} | {a['miou']:.1f} | {b['miou']:.1f} | {b['miou'] - a['miou']:+.1f} "
              f"| {a['mean_f1']:.1f} | {b['mean_f1']:.1f} | {b['mean_f1'] - a['mean_f1']:+.1f} |")
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                                        "pretrain_minutes": pretrain_minutes}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
