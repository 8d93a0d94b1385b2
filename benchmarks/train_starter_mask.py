"""Train the starter face-mask segmenter (ABANet) on the masked-faces `train` split; resumable, time-budgeted.

The target is the face_mask class. FINDINGS.md showed that synthetic overlays teach "light-blue surgical mask", so
the recipe recolours and textures the mask region (stripes, checks, dots, noise, black/white/grey) and zooms
strongly (0.6-1.8x), besides flips, rotation and colour jitter. Loss: ABANet's hybrid focal + SSIM + IoU over its
eight side outputs. The learning rate follows one cosine over the time budget, so a budget in minutes fits a
2-core CPU; `--resume` continues a killed run. Held-out scores (test split) go to `eval.json` and are printed.

    python benchmarks/train_starter_mask.py --data DATA/maskedfaces3 --out runs/mask --minutes 30
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

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from faceparse.core.augment import AugmentConfig, augment_pair, resize_pair, to_tensor_array
from faceparse.core.metrics import BinaryScores
from faceparse.models.losses import HybridMaskLoss
from faceparse.models.registry import build_model
from PIL import Image
from safetensors.torch import load_file, save_file

MASK_CLASS = 2
LOAD_SIZE = 384


def load_split(data: Path, split: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for r in csv.DictReader(open(data / "split.csv")):
        if r["split"] != split:
            continue
        img = np.asarray(Image.open(next((data / "images").glob(r["stem"] + ".*"))).convert("RGB"))
        mask = (np.asarray(Image.open(data / "masks" / f"{r['stem']}.png")) == MASK_CLASS).astype(np.uint8)
        img, mask = resize_pair(img, mask, (LOAD_SIZE, LOAD_SIZE))
        out.append((r["stem"], img, mask))
    return out


def pattern(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A random fabric-like texture: solid, stripes, checks, dots or noise, in random or neutral colours."""
    neutral = [(20, 20, 20), (235, 235, 235), (128, 128, 128)]
    c1 = np.array(neutral[rng.integers(3)] if rng.random() < 0.5 else rng.integers(0, 256, 3), dtype=np.float32)
    c2 = np.array(rng.integers(0, 256, 3), dtype=np.float32)
    kind = rng.integers(5)
    yy, xx = np.mgrid[0:h, 0:w]
    period = rng.integers(4, 24)
    if kind == 0:
        sel = np.zeros((h, w), bool)
    elif kind == 1:
        sel = ((xx * math.cos(rng.uniform(0, math.pi)) + yy * math.sin(rng.uniform(0, math.pi))) // period) % 2 == 0
    elif kind == 2:
        sel = ((xx // period) + (yy // period)) % 2 == 0
    elif kind == 3:
        sel = ((xx % period - period / 2) ** 2 + (yy % period - period / 2) ** 2) < (period / 4) ** 2
    else:
        sel = cv2.resize(rng.random((max(1, h // period), max(1, w // period))), (w, h)) > 0.5
    out = np.where(sel[..., None], c2, c1)
    return out + rng.normal(0, 6, out.shape)


def retexture(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Replace the mask region's colour by a texture while keeping its shading (folds, shadows)."""
    if mask.sum() == 0:
        return img
    shade = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    region = shade[mask > 0]
    shade = (shade - region.mean()) / (region.std() + 1e-3) * 18.0
    tex = pattern(*mask.shape, rng) + shade[..., None]
    soft = cv2.GaussianBlur(mask.astype(np.float32), (5, 5), 0)[..., None]
    return np.clip(img * (1 - soft) + tex * soft, 0, 255).astype(np.uint8)


@torch.no_grad()
def evaluate(model, samples, size: int) -> dict:
    model.eval()
    scores = BinaryScores()
    for _, img, mask in samples:
        x, _ = resize_pair(img, None, (size, size))
        prob = model(torch.from_numpy(to_tensor_array(x))[None]).softmax(1)[:, 1:2]
        prob = F.interpolate(prob, size=mask.shape, mode="bilinear", align_corners=False)[0, 0].numpy()
        scores.add(prob, mask)
    model.train()
    return scores.summary()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--width", type=float, default=0.25, help="ABANet channel multiplier")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    train = load_split(args.data, "train")
    if args.limit:
        train = train[: args.limit]
    test = load_split(args.data, "test")
    print(f"train {len(train)} test {len(test)} size {args.size} width {args.width}", flush=True)

    model = build_model("abanet", classes=2, width=args.width)
    loss_fn = HybridMaskLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    budget = args.minutes * 60
    spent, step, epoch = 0.0, 0, 0
    rng = np.random.default_rng(1)
    if args.resume and (args.out / "state.pt").exists():
        model.load_state_dict(load_file(args.out / "last.safetensors"))
        st = torch.load(args.out / "state.pt", weights_only=False)  # our own file, written below
        opt.load_state_dict(st["opt"])
        spent, step, epoch = st["spent"], st["step"], st["epoch"]
        rng.bit_generator.state = st["rng"]
        print(f"resumed at epoch {epoch}, {spent / 60:.1f} of {args.minutes} minutes", flush=True)

    aug = AugmentConfig(rotation_deg=15, scale=(0.6, 1.8), shift=0.12, shear=0.05, color_jitter=0.25, ignore_index=0)
    log = open(args.out / "log.jsonl", "a")
    model.train()
    while spent < budget:
        order = rng.permutation(len(train))
        t_epoch, losses = time.time(), []
        for b in range(0, len(order) - args.batch + 1, args.batch):
            t0 = time.time()
            xs, ys = [], []
            for i in order[b:b + args.batch]:
                img, m = train[i][1], train[i][2]
                if rng.random() < 0.7:
                    img = retexture(img, m, rng)
                img, m = augment_pair(img, m, (args.size, args.size), rng, aug)
                xs.append(to_tensor_array(img))
                ys.append(m.astype(np.int64))
            x, y = torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))
            t = min(1.0, spent / budget)
            for g in opt.param_groups:
                g["lr"] = args.lr * min(1.0, (step + 1) / 50) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            losses.append(loss.item())
            spent += time.time() - t0
            if step % 10 == 0:
                print(f"epoch {epoch + 1} step {step} loss {np.mean(losses[-10:]):.4f} {spent / 60:.1f}/{args.minutes} min", flush=True)
            if spent >= budget:
                break
        epoch += 1
        rec = {"epoch": epoch, "loss": float(np.mean(losses)), "seconds": time.time() - t_epoch, "minutes": spent / 60}
        print(json.dumps(rec), flush=True)
        log.write(json.dumps(rec) + "\n")
        log.flush()
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(args.out / "last.tmp.safetensors"))
        os.replace(args.out / "last.tmp.safetensors", args.out / "last.safetensors")
        torch.save({"opt": opt.state_dict(), "spent": spent, "step": step, "epoch": epoch,
                    "rng": rng.bit_generator.state}, args.out / "state.tmp.pt")
        os.replace(args.out / "state.tmp.pt", args.out / "state.pt")

    result = {size: evaluate(model, test, size) for size in (args.size, 256)}
    (args.out / "eval.json").write_text(json.dumps({"size": args.size, "width": args.width, "epochs": epoch,
                                                    "minutes": spent / 60, "test": result}, indent=2))
    print("| eval size | IoU | F1 | precision | recall | MAE | F-beta | S-measure |\n|---|---|---|---|---|---|---|---|")
    for size, s in result.items():
        print(f"| {size} | {s['iou']:.3f} | {s['f1']:.3f} | {s['precision']:.3f} | {s['recall']:.3f} | {s['mae']:.4f} "
              f"| {s['fbeta']:.3f} | {s['smeasure']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
