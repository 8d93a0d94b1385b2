"""Inference speed of every architecture on this CPU: PyTorch eager vs ONNX Runtime, against the FLOP floor.

For each architecture at each size (batch 1, a fixed thread count): parameters, GFLOPs (convolutions and matmuls,
counted by torch's FlopCounterMode as 2 × multiply-adds), PyTorch eager ms, ONNX Runtime ms (the float32 export
a retrain writes) and its process CPU ms, which a busy machine does not inflate, and ORT ms ÷ floor ms,
where the floor is GFLOPs ÷ the best float32 matmul rate measured in the same run (torch and ORT MatMul, same
threads). A ratio near 1 means fp32 has nothing left to gain. "fp16w/fp32" is the wall time of the same export with
its weights stored in fp16 (as the starter models ship: `export_onnx(weights="float16")`) over the float32 file's,
timed alternately in the same loop.

    .venv/bin/python benchmarks/inference_speed.py            # 256² and 512², 5 timed runs each
    .venv/bin/python benchmarks/inference_speed.py --quick    # 2 timed runs each
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from faceparse.core.onnx_export import export_onnx  # noqa: E402
from faceparse.models import build_model, get_architecture, list_architectures  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

PARSER_CLASSES = 19
MATMUL_SIZE = 1024


def timed_ms(run, repeats: int) -> float:
    return timed_wall_and_cpu_ms(run, repeats)[0]


def timed_wall_and_cpu_ms(run, repeats: int) -> tuple[float, float]:
    """Median wall and process-CPU milliseconds; CPU time stays honest when other jobs share the cores."""
    run()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def once_ms(run) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1000


def halved_ratio(full: ort.InferenceSession, half: ort.InferenceSession, feed: dict, repeats: int) -> float:
    """Median wall time of the fp16-weight session over the float32 one's, the two run in turns so that a change
    in the machine's load hits both."""
    half.run(None, feed)
    ratios = []
    for _ in range(repeats):
        a = once_ms(lambda: full.run(None, feed))
        b = once_ms(lambda: half.run(None, feed))
        ratios.append(b / a)
    return statistics.median(ratios)


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def torch_matmul_gflops(repeats: int) -> float:
    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    ms = timed_ms(lambda: torch.mm(a, b), repeats * 4)
    return 2 * MATMUL_SIZE**3 / (ms / 1000) / 1e9


def ort_matmul_gflops(threads: int, repeats: int, workdir: Path) -> float:
    n = MATMUL_SIZE
    rng = np.random.default_rng(0)
    weight = onnx.numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), "w")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["a", "w"], ["c"])],
        "matmul",
        [onnx.helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [n, n])],
        [onnx.helper.make_tensor_value_info("c", onnx.TensorProto.FLOAT, [n, n])],
        [weight],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    path = workdir / "matmul.onnx"
    onnx.save_model(model, str(path))
    runner = session(path, threads)
    a = rng.standard_normal((n, n)).astype(np.float32)
    ms = timed_ms(lambda: runner.run(None, {"a": a}), repeats * 4)
    return 2 * n**3 / (ms / 1000) / 1e9


def count_gflops(model: torch.nn.Module, x: torch.Tensor) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops() / 1e9


def meta_for(architecture: str, classes: int) -> dict:
    spec = get_architecture(architecture)
    return {
        "task": spec.task,
        "architecture": architecture,
        "arch_args": {"classes": classes},
        "schema": {"name": "benchmark", "classes": [f"class{i}" for i in range(classes)]},
        "input_size": [256, 256],
        "normalization": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 timed runs per measurement")
    parser.add_argument(
        "--architectures", nargs="+", default=list_architectures(), choices=list_architectures()
    )
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="faceparse-speed-") as tmp:
        workdir = Path(tmp)
        torch_rate = torch_matmul_gflops(repeats)
        ort_rate = ort_matmul_gflops(args.threads, repeats, workdir)
        floor_rate = max(torch_rate, ort_rate)
        load = os.getloadavg()[0]
        if load > (os.cpu_count() or 1):
            print(
                f"warning: load average {load:.1f} on {os.cpu_count()} cores; wall times are inflated, see ORT cpu ms"
            )
        print(
            f"threads {args.threads}, batch 1, fp32; matmul {MATMUL_SIZE}²: torch {torch_rate:.0f} GFLOP/s, "
            f"ORT {ort_rate:.0f} GFLOP/s; floor uses {floor_rate:.0f} GFLOP/s",
            flush=True,
        )
        header = f"{'architecture':<28}{'size':>6}{'params M':>10}{'GFLOPs':>9}{'torch ms':>10}{'ORT ms':>9}"
        header += f"{'ORT cpu ms':>12}{'floor ms':>10}{'ORT/floor':>11}{'fp16w/fp32':>12}"
        print(header)
        print("-" * len(header))
        for name in args.architectures:
            classes = 2 if get_architecture(name).task == "mask" else PARSER_CLASSES
            torch.manual_seed(0)
            model = build_model(name, classes=classes).eval()
            params = sum(p.numel() for p in model.parameters()) / 1e6
            path = export_onnx(model, meta_for(name, classes), workdir / f"{name}.onnx")
            runner = session(path, args.threads)
            half = session(export_onnx(model, meta_for(name, classes), workdir / f"{name}-fp16w.onnx",
                                       weights="float16"), args.threads)
            for size in args.sizes:
                x = torch.randn(1, 3, size, size)
                gflops = count_gflops(model, x)
                with torch.inference_mode():
                    eager = timed_ms(lambda model=model, x=x: model(x), repeats)
                feed = {"input": x.numpy()}
                onnx_ms, onnx_cpu_ms = timed_wall_and_cpu_ms(
                    lambda runner=runner, feed=feed: runner.run(None, feed), repeats
                )
                floor_ms = gflops / floor_rate * 1000
                ratio = halved_ratio(runner, half, feed, repeats)
                print(
                    f"{name:<28}{size:>6}{params:>10.1f}{gflops:>9.1f}{eager:>10.0f}{onnx_ms:>9.0f}"
                    f"{onnx_cpu_ms:>12.0f}{floor_ms:>10.0f}{onnx_ms / floor_ms:>11.2f}{ratio:>12.2f}",
                    flush=True,
                )
            del runner, half, model
    return 0


if __name__ == "__main__":
    sys.exit(main())
