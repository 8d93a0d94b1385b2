"""Pre-label throughput: the whole job (decode, model, paste-back, save) against the model alone on the same faces.

A folder of generated 1024² JPEG face photos (aligned crops, so the job runs in whole-image mode) is pre-labeled by
`PrelabelJob` into a fresh project, and the same number of faces, decoded and cropped beforehand, are pushed through
a bare ONNX Runtime session of the same model with the same threads and batch size. The model-alone pass runs before
and after each of several job runs; each job run is compared with the two model-alone runs beside it and the median
of those ratios is reported, so a change in machine load during the run shows up as spread, not as overhead.
The model alone runs with the job's thread settings (ONNX Runtime's threads sleep when idle, leaving the cores to the
decoding threads between operators); one run with spinning threads is shown for reference.

Wall time is what a user waits; CPU time is this process's own CPU (all threads), which on a shared machine is the
steadier measure of work done.

Usage: python benchmarks/prelabel_throughput.py [--count 500] [--size 1024] [--model FILE.onnx | --random-model]
       [--input-size 512] [--workdir DIR] [--batch-size N] [--threads N]
The model is the shipped starter parser unless --model names another; --random-model exports a randomly initialised
DeepLabV3+ MobileNetV2 (19 classes) at --input-size once into the work directory instead (its network costs what a
trained one costs, but its masks, and so the work at class boundaries, are not those of a trained model). The defaults (24 photos, 3 rounds) are small because this machine is
shared; the issue's figure is for --count 500 --rounds 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from faceparse.core.faces import WHOLE_IMAGE
from faceparse.core.framing import Framing, prepare_file
from faceparse.core.model_resolver import starter_model_path
from faceparse.core.predictor import CPU, Predictor, cpu_count, read_model_info, session_options
from faceparse.core.prelabel import PrelabelJob
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import draw_face
from PIL import Image

DEFAULT_COUNT = 24
REFERENCE_FACES = 16


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_photos(folder: Path, count: int, size: int) -> list[Path]:
    """Face photos of `size`² as camera JPEGs: drawn at 256 px (drawing is slow), enlarged, with sensor-like grain
    so the files decode like photographs, not flat drawings."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"face_{i:05d}.jpg" for i in range(count)]
    missing = [(i, p) for i, p in enumerate(paths) if not p.exists()]
    for n, (i, path) in enumerate(missing):
        picture, _ = draw_face(1000 + i, 256)
        big = cv2.resize(picture, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        big += np.random.default_rng(i).normal(0, 4, big.shape).astype(np.float32)
        Image.fromarray(np.clip(big, 0, 255).astype(np.uint8)).save(path, quality=92)
        if (n + 1) % 20 == 0 or n + 1 == len(missing):
            log(f"  generated {n + 1}/{len(missing)} photos")
    return paths


def export_model(path: Path, input_size: int) -> Path:
    if path.exists():
        return path
    from faceparse.core.onnx_export import export_onnx
    from faceparse.core.schemas import get_schema
    from faceparse.models import build_model

    schema = get_schema("celebamask-hq")
    meta = {"task": "parser", "architecture": "deeplabv3plus_mobilenetv2", "arch_args": {"classes": 19},
            "schema": {"name": schema.name, "classes": list(schema.classes),
                       "flip_pairs": [list(p) for p in schema.flip_pairs]},
            "input_size": [input_size, input_size],
            "normalization": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
            "version": "benchmark"}
    log(f"exporting DeepLabV3+ MobileNetV2 at {input_size}² to {path} (once)")
    return export_onnx(build_model("deeplabv3plus_mobilenetv2", classes=19), meta, path)


def reference_batches(model: Path, photos: list[Path], batch_size: int) -> list[np.ndarray]:
    """Normalised N×3×H×W batches of real crops, made exactly as the job makes them."""
    info = read_model_info(model)
    framing = Framing(WHOLE_IMAGE)
    crops = np.concatenate([prepare_file(i, p, framing, info.input_size).crops
                            for i, p in enumerate(photos[:REFERENCE_FACES])])
    x = crops.astype(np.float32) / 255.0
    x = (x - np.asarray(info.mean, np.float32)) / np.asarray(info.std, np.float32)
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return [x[i:i + batch_size] for i in range(0, len(x), batch_size)]


def model_session(model: Path, batches: list[np.ndarray], threads: int, spinning: bool) -> ort.InferenceSession:
    session = ort.InferenceSession(str(model), session_options(threads, spinning), providers=[CPU])
    session.run(None, {session.get_inputs()[0].name: batches[0]})
    return session


def time_model_alone(session: ort.InferenceSession, batches: list[np.ndarray], faces: int, batch_size: int
                     ) -> tuple[float, float]:
    """(wall s, CPU s) for `faces` faces in batches, cycling through the reference crops."""
    name = session.get_inputs()[0].name
    sizes = [batch_size] * (faces // batch_size) + ([faces % batch_size] if faces % batch_size else [])
    wall, cpu = time.perf_counter(), time.process_time()
    for k, n in enumerate(sizes):
        session.run(None, {name: batches[k % len(batches)][:n]})
    return time.perf_counter() - wall, time.process_time() - cpu


def time_job(folder: Path, model: Path, batch_size: int, threads: int):
    """(wall s, CPU s) of the whole run, the same for its image loop alone (after the model is loaded and the
    work planned), and the job's result."""
    with ProjectStore.create(folder) as store:
        store.scan()
        job = PrelabelJob(store, model, device="cpu", mode=WHOLE_IMAGE, batch_size=batch_size, threads=threads)
        loop_start: list[float] = []

        def on_progress(progress) -> None:
            if not loop_start:
                loop_start.append(time.process_time())

        wall, cpu = time.perf_counter(), time.process_time()
        result = job.run(on_progress)
        wall, end_cpu = time.perf_counter() - wall, time.process_time()
        if result.predicted != result.total or result.failed:
            raise SystemExit(f"the job did not label everything: {result}")
    return (wall, end_cpu - cpu), (result.seconds, end_cpu - loop_start[0]), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"photos (default {DEFAULT_COUNT})")
    parser.add_argument("--size", type=int, default=1024, help="photo side in pixels (default 1024)")
    parser.add_argument("--model", type=Path, help="an exported .onnx model (default: the starter parser)")
    parser.add_argument("--random-model", action="store_true", help="export a random DeepLabV3+ instead")
    parser.add_argument("--input-size", type=int, default=512, help="input side of --random-model (default 512)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "faceparse-prelabel-bench",
                        help="photos and the exported model are kept here between runs")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=cpu_count())
    parser.add_argument("--rounds", type=int, default=3, help="job runs, each between two model-alone runs")
    args = parser.parse_args(argv)

    library = args.workdir / f"photos-{args.size}"
    log(f"photos: {library}")
    photos = make_photos(library, args.count, args.size)
    folder = args.workdir / f"job-{args.size}-{args.count}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for photo in photos:
        try:
            os.link(photo, folder / photo.name)
        except OSError:
            shutil.copy2(photo, folder / photo.name)
    if args.random_model:
        model = export_model(args.workdir / f"parser-{args.input_size}.onnx", args.input_size)
    else:
        model = args.model or starter_model_path("parser")
    batches = reference_batches(model, photos, args.batch_size)

    sessions = {spinning: model_session(model, batches, args.threads, spinning) for spinning in (False, True)}
    spin = time_model_alone(sessions[True], batches, args.count, args.batch_size)
    alone = [time_model_alone(sessions[False], batches, args.count, args.batch_size)]
    jobs = []
    for k in range(args.rounds):
        log(f"round {k + 1}/{args.rounds}: pre-label job, then the model alone")
        shutil.rmtree(folder / ".faceparse", ignore_errors=True)
        jobs.append(time_job(folder, model, args.batch_size, args.threads))
        alone.append(time_model_alone(sessions[False], batches, args.count, args.batch_size))

    n, rounds = args.count, args.rounds
    info = read_model_info(model)
    h, w = info.input_size
    neighbours = [((alone[k][0] + alone[k + 1][0]) / 2, (alone[k][1] + alone[k + 1][1]) / 2) for k in range(rounds)]

    def ratios(pick) -> tuple[float, float]:
        """Median over rounds of (job / the model-alone passes either side of it) − 1, wall and CPU."""
        wall = [pick(jobs[k])[0] / neighbours[k][0] - 1 for k in range(rounds)]
        cpu = [pick(jobs[k])[1] / neighbours[k][1] - 1 for k in range(rounds)]
        return float(np.median(wall)) * 100, float(np.median(cpu)) * 100

    def row(name: str, wall: float, cpu: float, images: int) -> str:
        return f"| {name} | {images} | {wall:.1f} | {images / wall:.2f} | {cpu:.1f} | {1000 * cpu / images:.0f} |"

    total = lambda pairs: (sum(p[0] for p in pairs), sum(p[1] for p in pairs))  # noqa: E731
    print(f"\nPre-label throughput: {n} photos of {args.size}², {info.path.name} at {w}×{h}, batch {args.batch_size}, "
          f"{args.threads} threads, CPU, whole-image mode; {rounds} rounds, each job run between two model-alone "
          "runs\n")
    print("| run | images | wall s | images/s | CPU s | CPU ms/image |")
    print("|---|---:|---:|---:|---:|---:|")
    print(row("model alone, same faces (threads sleep when idle, as in the job)", *total(alone[1:]), n * rounds))
    print(row("model alone, same faces (spinning threads; one run, for reference)", *spin, n))
    print(row("whole pre-label job: load model, plan, decode, model, paste-back, uncertainty, save",
              *total([j[0] for j in jobs]), n * rounds))
    print(row("the job's image loop alone (after loading the model and planning)", *total([j[1] for j in jobs]),
              n * rounds))
    for name, pick in (("whole job", lambda j: j[0]), ("image loop", lambda j: j[1])):
        wall, cpu = ratios(pick)
        print(f"| **{name}: overhead over the model alone (median of rounds)** | | **{wall:+.1f}%** | | "
              f"**{cpu:+.1f}%** | |")
    spread = [abs(alone[k][0] - alone[k + 1][0]) / neighbours[k][0] * 100 for k in range(rounds)]
    print(f"\nModel-alone runs: {', '.join(f'{a[0]:.1f}' for a in alone)} s wall; neighbours differ by "
          f"{', '.join(f'{x:.0f}%' for x in spread)} (how much the machine's load moved during a round).")
    tail = Predictor(model, device="cpu", threads=1, confidence=False).tail
    print("The job's masks: " + ("the network stops before its final bilinear enlargement and the mask is made by "
                                 "interpolating only at class boundaries (resize_argmax)." if tail else
                                 "arg-max over the network's full-size output, inside the ONNX graph."))
    scheduling = {"idle": "in the idle scheduling class", "": "at the model's priority"}
    how = jobs[0][2].pipeline.helper_scheduling
    print(f"The job's decoding and writing threads ran {scheduling.get(how, how)}; the model's thread decoded "
          f"{', '.join(str(j[2].pipeline.prepared_here) for j in jobs)} images itself and finished "
          f"{', '.join(str(j[2].pipeline.finished_here) for j in jobs)} itself"
          + ("; the helpers fell behind and the model's thread took over their work." if any(
              j[2].pipeline.helpers_retired for j in jobs) else "."))
    waits = ", ".join(f"{j[2].pipeline.wait_seconds:.2f}" for j in jobs)
    print(f"Inside the jobs: {', '.join(f'{j[2].pipeline.model_seconds:.1f}' for j in jobs)} s in model runs; "
          f"{waits} s waiting for decoded images.")
    return 0

if __name__ == "__main__":
    sys.exit(main())
