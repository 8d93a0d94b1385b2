"""Store an exported model's float32 weights as float16 in place (see `core.onnx_export.half_weights`).

For ONNX files exported before the starter models shipped with half-precision weights. Prints each file's size
before and after and how far the logits move on a random batch.

    python packaging/halve_onnx_weights.py resources/models/parser.onnx resources/models/mask.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from faceparse.core.atomic import atomic_path
from faceparse.core.onnx_export import half_weights, read_onnx_meta


def logits(model: bytes, batch: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path)
    args = ap.parse_args()
    for path in args.models:
        side = int(read_onnx_meta(path)["input_size"][0])
        proto = onnx.load(str(path))
        before = proto.SerializeToString()
        halved = half_weights(proto)
        if not halved:
            print(f"{path}: no float32 weights left to halve")
            continue
        after = proto.SerializeToString()
        batch = np.random.default_rng(0).standard_normal((2, 3, side, side)).astype(np.float32)
        old, new = logits(before, batch), logits(after, batch)
        agree = float((old.argmax(1) == new.argmax(1)).mean())
        with atomic_path(path) as tmp:
            tmp.write_bytes(after)
        print(f"{path}: {halved} tensors halved, {len(before) / 1e6:.1f} MB -> {len(after) / 1e6:.1f} MB; "
              f"largest logit change {np.abs(old - new).max():.4f}, argmax agrees on {100 * agree:.4f}% of pixels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
