"""Would averaging several trained parsers beat the best one? Scores every combination of the given checkpoints.

Each combination averages its members' class probabilities (and, with flip TTA, those of the mirrored faces with
left/right classes swapped back) on the held-out test faces at 512 px, then scores the argmax against the full
masks with one confusion matrix, as `train_starter_parser.py` does. Every network runs once per face; the
combinations share those outputs, so the table costs one pass per checkpoint.

With `--scales 448,512,576` every member also sees each face at those input sizes, and the probabilities of all
sizes are averaged at the mask's resolution (multi-scale test-time augmentation); the table then scores each size
alone as well.

    python benchmarks/parser_ensemble.py --data DATA/celebamask19 s5=resources/models/parser/model.safetensors \\
        s6=runs/parser_s6/last.safetensors s7=runs/parser_s7/last.safetensors
    python benchmarks/parser_ensemble.py --data DATA/celebamask19 --arch lite2=deeplabv3plus_efficientnet_lite2 \\
        shipped=resources/models/parser/model.safetensors lite2=benchmarks/checkpoints/parser_lite2_stage20.safetensors
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
import torch.nn.functional as F
from faceparse.core.augment import resize_pair, to_tensor_array
from faceparse.core.metrics import confusion_matrix, scores_from_confusion
from faceparse.models.registry import DEFAULT_PARSER
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_starter_parser import CLASSES, build, flip_lut, load_split  # noqa: E402

WATCHED = ("ear_r", "neck_l")


def load_model(path: Path, architecture: str = DEFAULT_PARSER) -> torch.nn.Module:
    model = build(len(CLASSES), pretrained=False, architecture=architecture).to(memory_format=torch.channels_last)
    model.load_state_dict({k: v.float() for k, v in load_file(path).items()})
    return model.eval()


def probabilities(model: torch.nn.Module, img: np.ndarray, size: int, out: tuple[int, int], lut: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities of the face and of its mirror (flipped back, sides swapped), resized to `out`."""
    x, _ = resize_pair(img, None, (size, size))
    xt = torch.from_numpy(to_tensor_array(x))[None].contiguous(memory_format=torch.channels_last)
    plain = model(xt).softmax(1)
    mirrored = model(xt.flip(3)).softmax(1).flip(3)[:, lut]
    return tuple(F.interpolate(p, size=out, mode="bilinear", align_corners=False) for p in (plain, mirrored))


@torch.no_grad()
def confusions(models: dict[str, torch.nn.Module], samples, scales: tuple[int, ...]
               ) -> dict[tuple[tuple[str, ...], str, bool], np.ndarray]:
    """Confusion matrices keyed by (members, input sizes, flip TTA)."""
    n = len(CLASSES)
    lut = torch.from_numpy(flip_lut(n)[:n].astype(np.int64))
    combos = [c for r in range(1, len(models) + 1) for c in itertools.combinations(models, r)]
    views = [(s,) for s in scales] + ([scales] if len(scales) > 1 else [])
    cms = {(c, "/".join(map(str, v)), tta): np.zeros((n, n), np.int64)
           for c in combos for v in views for tta in (False, True)}
    for i, (_, img, mask) in enumerate(samples, 1):
        probs = {(k, s): probabilities(m, img, s, mask.shape, lut) for k, m in models.items() for s in scales}
        for c, v, tta in cms:
            prob = sum(probs[(k, s)][0] + (probs[(k, s)][1] if tta else 0) for k in c for s in map(int, v.split("/")))
            cms[(c, v, tta)] += confusion_matrix(mask, prob.argmax(1)[0].numpy(), n)
        if i % 20 == 0 or i == len(samples):
            print(f"{i}/{len(samples)} faces", file=sys.stderr, flush=True)
    return cms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--scales", default="", help="input sizes to average, e.g. 448,512,576 (default: --size only)")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N test faces (smoke runs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--arch", action="append", default=[], metavar="NAME=ARCH",
                    help=f"the network of checkpoint NAME, a registry name (default: {DEFAULT_PARSER})")
    ap.add_argument("checkpoints", nargs="+", metavar="NAME=PATH")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    named = dict(item.split("=", 1) for item in args.checkpoints)
    networks = dict(item.split("=", 1) for item in args.arch)
    unknown = sorted(set(networks) - set(named))
    if unknown:
        ap.error(f"--arch names no checkpoint: {', '.join(unknown)}")
    models = {name: load_model(Path(path), networks.get(name, DEFAULT_PARSER)) for name, path in named.items()}
    test = load_split(args.data, "test")
    if args.limit:
        test = test[: args.limit]
    scales = tuple(int(s) for s in args.scales.split(",") if s) or (args.size,)
    cms = confusions(models, test, scales)
    print(f"\n{len(test)} test faces, scored at the masks' resolution; "
          f"means over the {len(CLASSES) - 1} non-background classes\n")
    print("| members | input sizes | flip TTA | mean F1 | mIoU | pixel accuracy | "
          + " | ".join(f"{c} F1" for c in WATCHED) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(WATCHED))
    for (combo, sizes, tta), cm in cms.items():
        s = scores_from_confusion(cm, CLASSES)
        watched = " | ".join(f"{100 * (s['per_class_f1'][c] or 0):.1f}" for c in WATCHED)
        print(f"| {' + '.join(combo)} | {sizes} | {'yes' if tta else 'no'} | {100 * s['mean_f1_no_bg']:.2f} | "
              f"{100 * s['miou_no_bg']:.2f} | {100 * s['pixel_accuracy']:.2f} | {watched} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
