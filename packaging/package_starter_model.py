"""Turn a finished starter-model training run into the files the application ships.

Writes `resources/models/<task>/` (fp16 safetensors + meta.json: a checkpoint that fine-tuning starts from) and
`resources/models/<task>.onnx` (metadata embedded: what pre-labeling runs). The ONNX file is exported from the
weights as stored in fp16 and keeps its weights in fp16 (cast to float32 when ONNX Runtime loads it), so the
checkpoint and the ONNX model are the same network at half the size. The held-out metrics of the run (its
eval.json) go into the metadata.

    python packaging/package_starter_model.py --task parser --run runs/parser
    python packaging/package_starter_model.py --task mask --run runs/mask --arch-args '{"width": 0.25}'
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from faceparse.core.augment import IMAGENET_MEAN, IMAGENET_STD
from faceparse.core.checkpoint import load_checkpoint, save_checkpoint
from faceparse.core.onnx_export import export_onnx
from faceparse.core.schemas import get_schema
from faceparse.models.registry import build_model
from safetensors.torch import load_file

TASKS = {
    "parser": {"architecture": "deeplabv3plus_mobilenetv2", "schema": "celebamask-hq", "input_size": 384,
               "data": "CelebAMask-HQ subset: 768 training faces (fixed train split of 1,000), 512 px"},
    "mask": {"architecture": "abanet", "schema": "face-mask", "input_size": 192,
             "data": "Masked-faces set (FFHQ faces with synthetic mask overlays): 450 training faces"},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=sorted(TASKS), required=True)
    ap.add_argument("--run", type=Path, required=True, help="training run folder with last.safetensors")
    ap.add_argument("--arch", default="", help="registry name of the run's network (default: the task's)")
    ap.add_argument("--arch-args", default="{}", help="extra architecture arguments as JSON")
    ap.add_argument("--input-size", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "resources" / "models")
    args = ap.parse_args()
    spec = TASKS[args.task]
    schema = get_schema(spec["schema"])
    arch_args = {"classes": schema.num_classes, **json.loads(args.arch_args)}
    architecture = args.arch or spec["architecture"]
    model = build_model(architecture, **arch_args)
    model.load_state_dict(load_file(args.run / "last.safetensors"))
    model.eval()
    metrics = {}
    if (args.run / "eval.json").is_file():
        metrics = json.loads((args.run / "eval.json").read_text())
    size = args.input_size or spec["input_size"]
    meta = {
        "task": args.task,
        "architecture": architecture,
        "arch_args": arch_args,
        "schema": schema.to_dict(),
        "input_size": [size, size],
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "training_data": {"summary": spec["data"], "terms": "non-commercial research data",
                          "provenance": "resources/models/PROVENANCE.md"},
        "metrics": metrics,
        "version": "starter-1",
        "parent": None,
    }
    target = args.out / args.task
    save_checkpoint(target, model, meta, dtype="float16")
    shipped, shipped_meta = load_checkpoint(target)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_tmp = Path(tmp) / "model.onnx"
        export_onnx(shipped, shipped_meta, onnx_tmp, weights="float16")
        (args.out / f"{args.task}.onnx").write_bytes(onnx_tmp.read_bytes())
    for path in (target / "model.safetensors", args.out / f"{args.task}.onnx"):
        print(f"{path}: {path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
