"""The retrain job's process: read the corrected faces, fine-tune, measure, save a version, promote it if it is
better, re-predict what nobody corrected.

Started by `JobRunner` as `python -m faceparse.core.train_worker --project FOLDER --job-id N` (the options are the
job's params), or by hand, also on several processes or GPUs:

    python -m faceparse.core.train_worker --project FOLDER --config '{"task": "parser", "epochs": 5}' --events text
    torchrun --nproc_per_node=2 -m faceparse.core.train_worker --project FOLDER --config '{"epochs": 5}' --events text

Under torchrun every process trains on its share of each batch through DistributedDataParallel (NCCL on GPUs,
gloo on CPUs); rank 0 owns the job: it reads the project (and hands the snapshot to the others through the job's
folder), validates, emits events, writes the version and promotes it.

Before the phases, `settle_start` decides the start point (`init`: the active version, else the shipped starter,
else ImageNet), its network options and the input size: the one asked for, else the start model's own (a model
fine-tuned at another size than it works at loses much of what it learned first), else the recipe's.

Phases (`RETRAIN_PHASES`, run in order, each `phase(ctx: RetrainContext) -> None`):
    snapshot   read every corrected/reviewed face into memory (datasets.snapshot_project): later edits don't leak in;
               a project that pre-labels face by face trains and validates on the same face crops
    prepare    build the network from the start point and measure the active model and the start model (at the
               training size) on the validation faces
    pretrain   optional masked pre-training (see below)
    train      trainer.fit with the task's recipe; the best validation epoch is kept
    save       versions.create_version: checkpoint, metrics, ONNX export, parent, data summary
    promote    activate the new version only if it beats the active model on the same validation faces
    repredict  after a promotion, re-predict the faces nobody corrected, with the new model

The masked pre-training hook: the `pretrain` phase imports `faceparse.core.pretrain` and calls its
`pretrain_phase(ctx)` when the job's `pretrain` option is True, or when it is "auto" and `pretrain_wanted(ctx)`
returns True. The hook runs after `prepare` (ctx.model holds the start network, ctx.start says where its weights
came from, ctx.snapshot the labeled faces, ctx.store the project for the unlabeled ones) and before `train`; it
may replace the body of ctx.model or ctx.model itself. It reports through ctx.emit(...) with phase "pretrain" and
should poll ctx.cancelled() (or ctx.cancel_event) every step; `config.extra` carries its options. With pretrain=True
and no hook the job fails at once with a clear message; with "auto" and no hook the phase is skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import shlex
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceparse.core.checkpoint_layout import has_checkpoint
from faceparse.core.jobs import (
    CANCELLED_EXIT,
    JobReporter,
    is_out_of_memory,
    job_work_dir,
    training_lock,
)
from faceparse.core.store import ProjectError, ProjectStore

PHASE_DOING = {"start": "starting", "snapshot": "reading the corrected faces", "prepare": "preparing the model",
               "pretrain": "masked pre-training", "train": "training", "validate": "validating",
               "save": "saving the new version", "promote": "promoting the new version",
               "repredict": "re-predicting uncorrected faces"}
LOCK_WAIT_S = 5.0
NO_VALIDATION_NOTE = ("no validation faces yet: the new model cannot be measured, so it will not replace the active "
                      "model unless forced; correct more faces (about one in five is kept for validation)")


@dataclass
class StartPoint:
    """Where the network's first weights come from."""

    kind: str  # "version", "starter", "imagenet" or "scratch"
    version: str | None = None
    path: Path | None = None
    loaded: int = 0
    skipped: int = 0

    @property
    def trained(self) -> bool:
        """A trained model of this task whose every tensor was taken (so fine-tuning uses the lower rate)."""
        return self.kind in ("version", "starter") and self.loaded > 0 and self.skipped == 0

    def describe(self) -> str:
        fresh = f" ({self.skipped} tensors re-initialised)" if self.skipped else ""
        if self.kind == "version":
            return f"version {self.version}{fresh}"
        if self.kind == "starter":
            return f"the shipped starter model{fresh}"
        return {"imagenet": "ImageNet-initialised weights", "scratch": "random weights"}[self.kind]


@dataclass
class RetrainContext:
    """Everything the phases share; see the module docstring for who fills what."""

    store: ProjectStore
    config: Any  # recipes.TrainConfig
    reporter: Any  # jobs.JobReporter (rank 0) or a silent stand-in
    dist: Any  # trainer.Distributed
    work_dir: Path
    device: Any
    cancel_event: threading.Event = field(default_factory=threading.Event)
    snapshot: Any = None
    start: StartPoint | None = None
    start_path: Path | None = None  # the start point's checkpoint folder (None: ImageNet or random weights)
    model: Any = None
    baseline: dict[str, Any] | None = None
    active_at_start: str | None = None  # the version active when the job began (None: the starter model)
    pretrain_seconds: float = 0.0  # spent by masked pre-training, out of the time limit
    initial: dict[str, Any] | None = None
    fit: Any = None
    metrics: dict[str, Any] | None = None
    version: dict[str, Any] | None = None
    decision: Any = None
    repredict: dict[str, Any] | None = None
    arch_args: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def recipe(self):
        from faceparse.core.recipes import get_recipe

        return get_recipe(self.config.task)

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def emit(self, phase: str, message: str = "", **fields: Any) -> None:
        if self.is_main:
            self.reporter.emit({"phase": phase, "message": message, **fields})

    def note(self, line: str) -> None:
        self.notes.append(line)
        if self.is_main:
            self.reporter.log(line)

    def cancelled(self) -> bool:
        if self.reporter.cancelled():
            self.cancel_event.set()
        return self.cancel_event.is_set()

    def check_cancel(self) -> None:
        from faceparse.core.trainer import TrainingCancelled

        if self.cancelled():
            raise TrainingCancelled(f"cancelled during {self.reporter.phase}")

    def model_meta(self, **fields: Any) -> dict[str, Any]:
        from faceparse.core.recipes import model_meta

        return model_meta(self.config, self.snapshot.target.schema_json(self.store.schema), self.arch_args,
                          **fields)

    def val_pairs(self) -> list[tuple[Any, Any]]:
        return [(s.image, s.mask) for s in self.snapshot.val]


class SilentReporter:
    """What ranks other than 0 report through: nothing (rank 0 speaks for the job)."""

    phase = "train"
    cancel_outcome = ""

    def emit(self, event: dict[str, Any]) -> None:
        pass

    def log(self, line: str) -> None:
        pass

    def cancelled(self) -> bool:
        return False

    @contextlib.contextmanager
    def protected(self):
        yield


# --- phases ----------------------------------------------------------------------------------------------------------

def phase_snapshot(ctx: RetrainContext) -> None:
    from faceparse.core.datasets import DatasetError, DatasetSnapshot, project_framing, snapshot_project

    shared = ctx.work_dir / "snapshot"
    if ctx.is_main:
        framing = project_framing(ctx.store)
        ctx.emit("snapshot", "reading the corrected faces" if framing is None else
                 "reading the corrected faces and finding the faces in them, as pre-labeling does")
        baseline_size = auto_start_size(ctx.store, ctx.config.task) or 0  # the model the new one must beat
        ctx.snapshot = snapshot_project(ctx.store, ctx.config.task, max_side=ctx.config.snapshot_side(),
                                        cancelled=ctx.cancelled, framing=framing,
                                        input_size=ctx.config.input_size, val_input_size=baseline_size,
                                        val_max_side=2 * baseline_size)
        ctx.check_cancel()
        if ctx.dist.active:
            ctx.snapshot.save(shared)
    ctx.dist.barrier()
    if not ctx.is_main:
        ctx.snapshot = DatasetSnapshot.load(shared)
    snap = ctx.snapshot
    for relpath, reason in snap.skipped[:20]:
        ctx.note(f"skipped {relpath}: {reason}")
    if not snap.train:
        reasons = "; ".join(f"{relpath}: {reason}" for relpath, reason in snap.skipped[:2])
        more = f" (and {len(snap.skipped) - 2} more in the job's log)" if len(snap.skipped) > 2 else ""
        if snap.val and snap.skipped:  # the faces that would have trained could not be read: that is the cause
            raise DatasetError(f"no corrected face is left to train on: {len(snap.skipped)} were left out "
                               f"({reasons}{more}) and the other {len(snap.val)} are validation faces; fix or "
                               "check the faces left out, or correct a few more")
        if snap.val:
            raise DatasetError(f"all {len(snap.val)} corrected faces fell into the fixed validation split; "
                               "correct a few more faces so some are left to train on")
        if snap.skipped:
            raise DatasetError(f"every corrected face was left out ({len(snap.skipped)}), so there is nothing to "
                               f"train on: {reasons}{more}")
        raise DatasetError("there are no corrected faces to train on yet: correct (or review) some predictions "
                           "first")
    message = _snapshot_message(snap)
    if snap.skipped:
        message += f"; {len(snap.skipped)} skipped"
    if not snap.val:
        ctx.note(NO_VALIDATION_NOTE)
        message += f"; {NO_VALIDATION_NOTE}"
    ctx.emit("snapshot", message)


def _snapshot_message(snap: Any) -> str:
    """How many faces training reads; in faces framing, how many crops from how many photos, so the numbers do
    not look like a miscount of the photos."""
    from faceparse.core.faces import FACES

    if snap.framing != FACES:
        return f"{len(snap.train)} training and {len(snap.val)} validation faces"
    photos = len(snap.image_ids("train")) + len(snap.image_ids("val"))
    message = (f"{len(snap.train)} training and {len(snap.val)} validation face crops from {photos} photos, "
               "framed as pre-labeling frames them")
    if snap.faceless:
        message += f" ({snap.faceless} with no face found, taken whole)"
    return message


def _load_matching(model: Any, state: dict[str, Any], class_rows: Callable[[], set[str]] | None = None,
                   classes_from: Sequence[str] | None = None, classes_to: Sequence[str] | None = None
                   ) -> tuple[int, int]:
    """Copy the tensors whose names and shapes match; the rest keep their initialisation (a new head). When the
    start model predicts other classes (`classes_from`) than the new one (`classes_to`), the tensors with a row
    per class (`class_rows`, their names) are copied by class name: a class both have keeps what it learnt,
    wherever it stands in the list, and a class the start model lacks starts fresh, instead of inheriting
    whatever class held its index."""
    own = model.state_dict()
    renamed = class_rows is not None and list(classes_from or ()) != list(classes_to or ())
    per_class = class_rows() if renamed else set()
    taken = {}
    for name, value in state.items():
        if name not in own:
            continue
        mine = own[name]
        if name in per_class and value.shape[0] == len(classes_from) and value.shape[1:] == mine.shape[1:]:
            rows = mine.clone()
            for i, cls in enumerate(classes_to):
                if cls in classes_from:
                    rows[i] = value[list(classes_from).index(cls)]
            taken[name] = rows
        elif name not in per_class and tuple(value.shape) == tuple(mine.shape):
            taken[name] = value
    own.update(taken)
    model.load_state_dict(own)
    return len(taken), len(own) - len(taken)


def _class_rows(network: str, classes: int, arch_args: dict[str, Any]) -> set[str]:
    """The names of the network's tensors with a row per class: those whose first size follows the class count."""
    from faceparse.models import build_model

    shapes = [{k: tuple(v.shape) for k, v in build_model(network, classes=n, pretrained=False,
                                                         **arch_args).state_dict().items()}
              for n in (classes, classes + 1)]
    return {k for k, shape in shapes[0].items() if shape != shapes[1].get(k)}


def _starter_dir(task: str, scratch: Path) -> Path | None:
    """The shipped starter checkpoint as a checkpoint directory (it may ship as <task>.safetensors + <task>.json)."""
    from faceparse.core.checkpoint import META_NAME, WEIGHTS_NAME
    from faceparse.core.versions import starter_checkpoint

    found = starter_checkpoint(task)
    if found is not None:
        return found
    with contextlib.suppress(Exception):
        from importlib import resources

        root = Path(str(resources.files("faceparse.resources"))) / "models"
        weights, meta = root / f"{task}.safetensors", root / f"{task}.json"
        if weights.is_file() and meta.is_file():
            scratch.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(weights, scratch / WEIGHTS_NAME)
            shutil.copyfile(meta, scratch / META_NAME)
            return scratch
    return None


def _resolve_start(ctx: RetrainContext) -> tuple[StartPoint, Path | None]:
    from faceparse.core.versions import STARTER, resolve_version

    init, task = ctx.config.init, ctx.config.task
    if init in ("imagenet", "scratch"):
        return StartPoint(init), None
    if init != "auto":
        row = resolve_version(ctx.store, task, init)
        if row["version"] != STARTER:
            return StartPoint("version", row["version"], Path(row["path"])), Path(row["path"])
    else:
        active = ctx.store.active_model(task)
        if active is not None and has_checkpoint(active["path"] or None):
            return StartPoint("version", active["version"], Path(active["path"])), Path(active["path"])
        if active is not None:
            ctx.note(f"the active version {active['version']} has no complete checkpoint at {active['path']}; "
                     f"starting from the starter model (roll back or activate another version to repair this)")
    starter = _starter_dir(task, ctx.work_dir / "starter")
    if starter is not None:
        return StartPoint("starter", path=starter), starter
    return StartPoint("imagenet"), None


def _measure(ctx: RetrainContext, model: Any, meta: dict[str, Any]) -> dict[str, Any]:
    from faceparse.core.evaluate import TorchPredictor

    return _measure_predictor(ctx, TorchPredictor(model, meta))


def _cancel_check(ctx: RetrainContext):
    """A progress callback that ends a validation pass (minutes on a CPU) at the next face when the job is
    cancelled. Only a lone process: where several train, the others wait on rank 0's validation and must stop
    with it at a step (see `fit`)."""
    if ctx.dist.world != 1:
        return None
    return lambda done, total: ctx.check_cancel()


def _measure_predictor(ctx: RetrainContext, predictor: Any) -> dict[str, Any]:
    from faceparse.core.evaluate import evaluate

    if not ctx.snapshot.val:
        return {"metrics": None, "score": math.nan}
    metrics = evaluate(predictor, ctx.val_pairs(), ctx.config.task, progress=_cancel_check(ctx))
    return {"metrics": metrics, "score": ctx.recipe.score(metrics), "input_size": list(predictor.meta["input_size"])}


def _measure_starter(ctx: RetrainContext) -> dict[str, Any] | None:
    """The shipped starter model's score, measured as pre-labeling runs it (see `starter_scorer`). While no
    version is active this is the model a new one must beat, whatever the new one started from."""
    from faceparse.core.evaluate import EvaluationError, starter_scorer
    from faceparse.core.face_and_mask import mask_partner
    from faceparse.core.versions import starter_checkpoint

    if starter_checkpoint(ctx.config.task) is None:
        return None
    notes: list[str] = []
    try:
        predictor = starter_scorer(ctx.store.schema, ctx.config.task, ctx.device, notes,
                                   mask_partner=mask_partner(ctx.store) if ctx.config.task == "parser" else None)
    except EvaluationError as e:
        ctx.note(f"the starter model cannot be measured on this project ({e}); it does not count as a baseline")
        return None
    for line in notes:
        ctx.note(line)
    return _measure_predictor(ctx, predictor)


def _measure_checkpoint(ctx: RetrainContext, directory: Path, label: str) -> dict[str, Any] | None:
    from faceparse.core.checkpoint import CheckpointError, load_checkpoint

    try:
        model, meta = load_checkpoint(directory, expect_classes=list(ctx.snapshot.classes), device=ctx.device)
    except (CheckpointError, OSError) as e:
        ctx.note(f"{label} cannot be measured on this project ({e}); it does not count as a baseline")
        return None
    if meta["task"] != ctx.config.task:
        ctx.note(f"{label} is a {meta['task']} model, not a {ctx.config.task} one; it is no baseline")
        return None
    return _measure(ctx, model, meta)


def _working_size(meta: dict[str, Any]) -> int:
    """The square training size of a model that works at meta's [height, width]: its longer side, rounded up to
    a size the networks take."""
    from faceparse.models.registry import INPUT_MULTIPLE

    side = max(int(v) for v in meta["input_size"])
    return max(INPUT_MULTIPLE, math.ceil(side / INPUT_MULTIPLE) * INPUT_MULTIPLE)


def _checked_start(ctx: RetrainContext, start: StartPoint, path: Path | None
                   ) -> tuple[StartPoint, Path | None, dict[str, Any], int | None]:
    """The start point, its weights' folder, the network options and the size the start model works at. Without
    an architecture asked for, training carries on with the start model's network (a retrain fine-tunes the
    active model, whatever network it is); a start model of another network than the one asked for gives way to
    ImageNet weights, unless the network asked for holds it whole (`grows_from`: the refined parser)."""
    from faceparse.core.checkpoint import CheckpointError, read_checkpoint_meta

    options = dict(ctx.recipe.arch_args)
    start_size = None
    if path is not None:
        try:
            meta = read_checkpoint_meta(path)
        except (CheckpointError, OSError) as e:
            raise ProjectError(f"cannot start from {start.describe()}: {e}") from None
        if ctx.config.architecture is None and meta.get("task") == ctx.config.task:
            ctx.config.architecture = meta["architecture"]
        if meta["architecture"] == ctx.config.network:
            options = {k: v for k, v in meta["arch_args"].items() if k not in ("classes", "pretrained")}
            start_size = _working_size(meta)
        elif meta["architecture"] in _grows_from(ctx.config.network):
            start_size = _working_size(meta)
            ctx.note(f"{ctx.config.network} starts from the trained weights of {start.describe()} (a "
                     f"{meta['architecture']}); its added layers start from scratch")
        else:
            ctx.note(f"{start.describe()} is a {meta['architecture']}, not a {ctx.config.network}; "
                     "starting from ImageNet-initialised weights instead")
            start, path = StartPoint("imagenet"), None
    if ctx.config.arch_args is not None:
        options = dict(ctx.config.arch_args)
    return start, path, options, start_size


def _grows_from(network: str) -> tuple[str, ...]:
    from faceparse.models.registry import get_architecture

    return get_architecture(network).grows_from


def settle_start(ctx: RetrainContext) -> None:
    """Decide the start point, the network options and the input size before any data is read, since the
    snapshot is downscaled for that size."""
    asked = ctx.config.input_size
    ctx.start, ctx.start_path, ctx.arch_args, start_size = _checked_start(ctx, *_resolve_start(ctx))
    _record_start_version(ctx)
    ctx.config.settle_input_size(start_size)
    size = ctx.config.input_size
    if asked is None and start_size is not None:
        ctx.note(f"training at {size} px, the input size of {ctx.start.describe()}")
    elif start_size is not None and start_size != size:
        ctx.note(f"training at {size} px as asked, while {ctx.start.describe()} works at {start_size} px: it is "
                 f"measured before training at {size} px too")


def _record_start_version(ctx: RetrainContext) -> None:
    """Put the version the job starts from on its row, so it cannot be deleted while the job needs it (the job
    loads it only after reading the data)."""
    job_id = getattr(ctx.reporter, "job_id", None)
    if ctx.is_main and job_id is not None and ctx.start.kind == "version" and ctx.start.version:
        ctx.store.add_job_params(job_id, start_version=ctx.start.version)


def auto_start_size(store: ProjectStore, task: str) -> int | None:
    """The input size a retrain with no size asked for trains at when it starts, as by default, from the active
    model, else the shipped starter model; None when neither can be read (the recipe's size then applies)."""
    from faceparse.core.checkpoint_layout import META_NAME
    from faceparse.core.versions import starter_checkpoint

    active = store.active_model(task)
    path = active["path"] if active is not None and has_checkpoint(active["path"] or None) \
        else starter_checkpoint(task)
    if path is None:
        return None
    try:  # the metadata alone, read as JSON: the studio asks this when it opens, before anything needs PyTorch
        return _working_size(json.loads((Path(path) / META_NAME).read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError):
        return None


def _start_is_baseline(ctx: RetrainContext, start: StartPoint) -> bool:
    """Whether the baseline just measured is also the start model's before-training score: the same weights,
    measured as the new model will be, at the training size (a start model trained at another size than asked
    for scores differently there)."""
    baseline = ctx.baseline
    if baseline is None or not start.trained:
        return False
    if baseline.get("input_size") != [ctx.config.input_size, ctx.config.input_size]:
        return False
    return (start.kind == "version" and baseline["version"] == start.version) or \
        (start.kind == "starter" and baseline["source"] == "starter")


def phase_prepare(ctx: RetrainContext) -> None:
    import torch
    from faceparse.core.checkpoint import CheckpointError, load_checkpoint
    from faceparse.models import build_model

    config = ctx.config
    start, path = ctx.start, ctx.start_path
    ctx.emit("prepare", f"building {config.network} from {start.describe()}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build_model(config.network, classes=len(ctx.snapshot.classes),
                            pretrained=ctx.is_main and start.kind == "imagenet", **ctx.arch_args)
    for warning in caught:
        ctx.note(f"note: {warning.message}")
        if start.kind == "imagenet" and "random init" in str(warning.message):
            start = StartPoint("scratch")
    if path is not None and ctx.is_main:
        try:
            source, source_meta = load_checkpoint(path)
        except (CheckpointError, OSError) as e:
            raise ProjectError(f"cannot start from {start.describe()}: {e}") from None
        start.loaded, start.skipped = _load_matching(
            model, source.state_dict(), lambda: _class_rows(config.network, len(ctx.snapshot.classes), ctx.arch_args),
            source_meta["schema"]["classes"], ctx.snapshot.classes)
    ctx.start = start
    ctx.model = model.to(ctx.device)
    if config.channels_last:
        ctx.model = ctx.model.to(memory_format=torch.channels_last)
    ctx.check_cancel()
    if not ctx.is_main:
        return
    active = ctx.store.active_model(config.task)
    ctx.active_at_start = None if active is None else active["version"]
    if active is not None and active["path"]:
        measured = _measure_checkpoint(ctx, Path(active["path"]), f"the active model {active['version']}")
        if measured is not None:
            ctx.baseline = {"source": "version", "version": active["version"], **measured}
    elif active is None:
        measured = _measure_starter(ctx)
        if measured is not None:
            ctx.baseline = {"source": "starter", "version": None, **measured}
    ctx.check_cancel()
    ctx.initial = dict(ctx.baseline) if _start_is_baseline(ctx, start) else \
        _measure(ctx, ctx.model, ctx.model_meta())
    parts = [f"start: {start.describe()}"]
    if ctx.baseline is not None:
        parts.append(f"active model score {_fmt(ctx.baseline['score'])}")
    parts.append(f"start model score {_fmt(ctx.initial['score'])} at {config.input_size} px")
    ctx.emit("prepare", "; ".join(parts), metrics=ctx.initial["metrics"])


def pretrain_hook() -> tuple[Callable[[RetrainContext], None] | None, Callable[[RetrainContext], bool] | None]:
    try:
        module = importlib.import_module("faceparse.core.pretrain")
    except ImportError:
        return None, None
    return getattr(module, "pretrain_phase", None), getattr(module, "pretrain_wanted", None)


def phase_pretrain(ctx: RetrainContext) -> None:
    mode = ctx.config.pretrain
    if mode is False:
        return
    run, wanted = pretrain_hook()
    if run is None:
        if mode is True:
            raise ProjectError("masked pre-training was asked for, but this version cannot run it as a phase of "
                               "the retrain job")
        return
    if mode == "auto" and (wanted is None or not wanted(ctx)):
        ctx.note("masked pre-training skipped (not needed for this data)")
        return
    if ctx.dist.active and not getattr(run, "distributed", False):
        if ctx.is_main:
            ctx.emit("pretrain", "masked pre-training on the unlabeled faces")
            run(ctx)
        ctx.dist.barrier()  # the other processes take rank 0's weights when the model is wrapped for training
        return
    ctx.emit("pretrain", "masked pre-training on the unlabeled faces")
    run(ctx)
    ctx.check_cancel()


def phase_train(ctx: RetrainContext) -> None:
    import torch
    from faceparse.core.datasets import augmented_batches, steps_per_epoch
    from faceparse.core.evaluate import TorchPredictor, evaluate
    from faceparse.core.trainer import FitConfig, fit, unwrap

    config, recipe, snap, dist = ctx.config, ctx.recipe, ctx.snapshot, ctx.dist
    meta = ctx.model_meta()
    model = ctx.model
    if dist.active:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=device_ids)
        ctx.note(f"training on {dist.world} processes ({torch.distributed.get_backend()}), "
                 f"{config.batch_size} faces per process and step")
    (lr,) = dist.share(recipe.learning_rate(config, ctx.start.trained))  # only rank 0 knows what it loaded
    fit_config = FitConfig(
        epochs=config.epochs, steps_per_epoch=steps_per_epoch(len(snap.train), config.batch_size, dist.world),
        lr=lr, weight_decay=config.weight_decay, optimizer=recipe.optimizer, patience=config.patience,
        max_steps=config.max_steps, time_limit_s=_time_left(config.time_limit_s, ctx.pretrain_seconds),
        channels_last=config.channels_last)
    augment = config.augmentation()
    flip_lut = snap.target.flip_lut()
    torch.manual_seed(config.seed)

    def batches(epoch: int):
        return augmented_batches(snap.train, config.input_size, config.batch_size, config.seed, epoch, augment,
                                 flip_lut, dist.rank, dist.world)

    def validate(net: Any) -> tuple[float, dict[str, Any]]:
        metrics = evaluate(TorchPredictor(net, meta), ctx.val_pairs(), config.task, progress=_cancel_check(ctx))
        return recipe.score(metrics), metrics

    loss = recipe.loss(config, snap).to(ctx.device)
    ctx.emit("train", f"fine-tuning {config.network} at {config.input_size} px, batch {config.batch_size}, "
                      f"lr {lr:g}, up to {config.epochs} epochs", step=0, total=fit_config.planned_steps)
    ctx.fit = fit(model, loss, batches, validate if snap.val else None, fit_config, on_event=ctx.reporter.emit,
                  cancelled=ctx.cancelled, dist=dist)
    ctx.model = unwrap(model)
    if ctx.is_main:
        ctx.metrics = ctx.fit.best_metrics if ctx.fit.best_metrics is not None else (
            _measure(ctx, ctx.model, meta)["metrics"])
        ctx.note(f"training ended ({ctx.fit.stop_reason}) after {ctx.fit.epochs} epochs, {ctx.fit.steps} steps, "
                 f"{ctx.fit.seconds:.0f} s; best epoch {ctx.fit.best_epoch}")


def _time_left(limit_s: float | None, spent_s: float) -> float | None:
    """Fine-tuning's share of the time limit: what masked pre-training left (at least a second, so it still
    makes a first step and a model)."""
    return None if limit_s is None else max(1.0, limit_s - spent_s)


def phase_save(ctx: RetrainContext) -> None:
    import torch
    from faceparse.core.versions import create_version

    ctx.check_cancel()
    config, snap = ctx.config, ctx.snapshot
    score = ctx.recipe.score(ctx.metrics)
    ctx.emit("save", "writing the checkpoint" + (" and its ONNX export" if config.export_onnx else ""))
    metrics = {
        "metric": ctx.recipe.primary_metric,
        "score": _json_number(score),
        "val": ctx.metrics,
        "baseline": None if ctx.baseline is None else {"version": ctx.baseline["version"],
                                                       "source": ctx.baseline["source"],
                                                       "score": _json_number(ctx.baseline["score"])},
        "initial_score": _json_number(ctx.initial["score"]) if ctx.initial else None,
        "val_images": len(snap.val),
    }
    training = {"config": config.to_dict(), "start": ctx.start.describe(), "fit": ctx.fit.to_dict()}
    meta = ctx.model_meta(training_data={**snap.summary(with_hashes=True), "training": training})
    parent = ctx.start.version if ctx.start.kind == "version" else None
    model = ctx.model.to("cpu").to(memory_format=torch.contiguous_format).eval()
    ctx.version = create_version(ctx.store, config.task, model, meta, metrics, parent,
                                 {**snap.summary(), "start": ctx.start.describe()}, export_onnx=config.export_onnx)
    ctx.reporter.cancel_outcome = (f"{config.task} {ctx.version['version']} was saved but not activated; the previous "
                                   "model is still active")
    ctx.emit("save", f"saved {config.task} version {ctx.version['version']}")


def phase_promote(ctx: RetrainContext) -> None:
    from faceparse.core.versions import PromotionDecision, activate, decide_promotion

    config = ctx.config
    score = ctx.recipe.score(ctx.metrics)
    baseline = None if ctx.baseline is None else ctx.baseline["score"]
    in_use = "the starter model" if ctx.baseline is not None and ctx.baseline["source"] == "starter" else \
        "the active model"
    ctx.decision = decide_promotion(score, baseline, config.promote, config.min_improvement, in_use,
                                    len(ctx.snapshot.val))
    if not ctx.decision.promote and config.promote == "auto" and not ctx.snapshot.val:
        ctx.decision = PromotionDecision(False, "not promoted: there are no validation faces to measure it on; "
                                                "correct more faces, or activate it yourself")
    now = ctx.store.active_model(config.task)
    now_version = None if now is None else now["version"]
    if ctx.decision.promote and config.promote != "force" and now_version != ctx.active_at_start:
        ctx.decision = PromotionDecision(
            False, f"not promoted: while it trained, {now_version or 'the starter model'} was made the active model "
                   f"in its place, and it was measured against {ctx.active_at_start or 'the starter model'}; "
                   f"activate {ctx.version['version']} yourself if it is the better one")
    ctx.check_cancel()
    if ctx.decision.promote:
        with ctx.reporter.protected():
            activate(ctx.store, config.task, ctx.version["version"])
            ctx.reporter.cancel_outcome = f"{config.task} {ctx.version['version']} is active"
    ctx.emit("promote", f"{ctx.version['version']} {ctx.decision.reason}")


def _joins_the_starter_parser(ctx: RetrainContext) -> bool:
    """Whether the new mask version pre-labels beside the starter parser (a masked-faces project without a parser
    version of its own; see `face_and_mask`), so the project's predictions change with it."""
    from faceparse.core.face_and_mask import wants_face_and_mask

    return ctx.config.task == "mask" and wants_face_and_mask(ctx.store.schema) \
        and ctx.store.active_model("parser") is None


def phase_repredict(ctx: RetrainContext) -> None:
    """Re-predict, with the newly active model, every face whose stored prediction came from an older one."""
    if not (ctx.decision and ctx.decision.promote and ctx.config.repredict):
        return
    try:
        from faceparse.core.model_resolver import models_command, task_for_schema
        from faceparse.core.prelabel import PrelabelJob
    except ImportError:
        ctx.note("re-prediction is not available in this version; run pre-labeling to update the predictions")
        return
    prelabel_task = task_for_schema(ctx.store.schema)
    if prelabel_task != ctx.config.task and not _joins_the_starter_parser(ctx):
        ctx.note(f"the project's predictions come from its {prelabel_task} model, so a new "
                 f"{ctx.config.task} model does not re-predict them")
        return
    if not (Path(ctx.version["path"]) / "model.onnx").is_file():
        ctx.note("the new model was saved without an ONNX export, so it cannot re-predict; run pre-labeling "
                 "after exporting it")
        return
    ctx.emit("repredict", "re-predicting the faces nobody corrected")
    job = PrelabelJob(ctx.store, None, device="cuda" if ctx.device.type == "cuda" else "cpu",
                      threads=ctx.config.threads, task=prelabel_task)

    def progress(p: Any) -> None:
        ctx.cancelled()
        ctx.emit("repredict", f"{p.done}/{p.total} faces", step=p.done, total=p.total, eta_s=p.eta_seconds)

    try:
        outcome = job.run(progress, cancel_event=ctx.cancel_event)
    except Exception as error:  # the new model is active either way; pre-labeling can be run again
        ctx.note(f"re-prediction failed ({type(error).__name__}: {error}); the new model stays active")
        ctx.repredict = {"state": "failed", "message": str(error)}
        return
    ctx.repredict = {"state": outcome.state, "job_id": outcome.job_id, "predicted": outcome.predicted,
                     "failed": len(outcome.failed), "total": outcome.total}
    rest = ""
    if outcome.state == "cancelled":  # the promotion stands: say so, and how to finish or undo it
        folder = shlex.quote(str(ctx.store.root))
        rest = (f"; the new model was already active: faceparse prelabel {folder} predicts the rest, "
                f"{models_command(ctx.store, ctx.config.task, 'rollback')} returns to the previous model")
    ctx.emit("repredict", f"re-predicted {outcome.predicted} of {outcome.total} faces ({outcome.state}){rest}")


RETRAIN_PHASES: list[tuple[str, Callable[[RetrainContext], None]]] = [
    ("snapshot", phase_snapshot),
    ("prepare", phase_prepare),
    ("pretrain", phase_pretrain),
    ("train", phase_train),
    ("save", phase_save),
    ("promote", phase_promote),
    ("repredict", phase_repredict),
]
MAIN_ONLY_PHASES = {"save", "promote", "repredict"}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _json_number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def result_of(ctx: RetrainContext) -> dict[str, Any]:
    recipe = ctx.recipe
    return {
        "task": ctx.config.task,
        "version": ctx.version["version"] if ctx.version else None,
        "promoted": bool(ctx.decision and ctx.decision.promote),
        "reason": ctx.decision.reason if ctx.decision else None,
        "metric": recipe.primary_metric,
        "score": _json_number(recipe.score(ctx.metrics)),
        "baseline_version": ctx.baseline["version"] if ctx.baseline else None,
        "baseline_source": ctx.baseline["source"] if ctx.baseline else None,
        "baseline_score": _json_number(ctx.baseline["score"]) if ctx.baseline else None,
        "initial_score": _json_number(ctx.initial["score"]) if ctx.initial else None,
        "metrics": ctx.metrics,
        "start": ctx.start.describe() if ctx.start else None,
        "data": None if ctx.snapshot is None else {k: v for k, v in ctx.snapshot.summary().items()
                                                   if not k.endswith("_ids")},
        "val_ids": None if ctx.snapshot is None else ctx.snapshot.image_ids("val"),
        "fit": ctx.fit.to_dict() if ctx.fit else None,
        "repredict": ctx.repredict,
        "notes": ctx.notes,
    }


def models_folder_problem(store: ProjectStore, task: str) -> str | None:
    """Why a new version of `task` could not be saved in the project's models folder, or None when it can: found
    out before training, not after the time it took."""
    from faceparse.core.atomic import folder_write_problem

    return folder_write_problem(store.models_dir / task, "models folder")


def _refuse_unwritable_models_folder(store: ProjectStore, task: str) -> None:
    problem = models_folder_problem(store, task)
    if problem is not None:
        raise ProjectError(f"{problem}; a new version could not be saved there, so nothing was trained")


def run_retrain(store: ProjectStore, config: Any, reporter: Any, work_dir: Path, dist: Any = None,
                phases: list[tuple[str, Callable[[RetrainContext], None]]] | None = None) -> dict[str, Any]:
    """Run the retrain phases in this process; returns the job's result (see `result_of`)."""
    import torch
    from faceparse.core.recipes import resolve_device
    from faceparse.core.trainer import Distributed

    if config.pretrain is True and pretrain_hook()[0] is None:
        raise ProjectError("masked pre-training was asked for, but this version cannot run it as a phase of the "
                           "retrain job")
    if config.threads:
        torch.set_num_threads(int(config.threads))
    torch.manual_seed(config.seed)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(config, local_rank)
    dist = dist or Distributed(device)
    ctx = RetrainContext(store, config, reporter, dist, work_dir, device)
    if ctx.is_main:
        _refuse_unwritable_models_folder(store, config.task)
    settle_start(ctx)
    together = True
    for name, phase in phases or RETRAIN_PHASES:
        if name in MAIN_ONLY_PHASES and together:
            dist.barrier()  # the other processes are done; rank 0 goes on alone
            together = False
            if not dist.is_main:
                break
        ctx.check_cancel()
        phase(ctx)
    return result_of(ctx)


# --- process entry point ---------------------------------------------------------------------------------------------

def _event_stream(mode: str):
    """JSON events go to the real stdout; anything else printed goes to stderr so it cannot corrupt them."""
    if mode != "json":
        return None
    stream = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def _init_distributed(device_hint: str) -> bool:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() and device_hint != "cpu" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, timeout=timedelta(hours=2))
    return True


def repredict_outcome(result: dict[str, Any]) -> str:
    """What became of re-predicting the unchecked faces after a promotion, when it did not simply finish: the
    person must not take the old model's masks for the new one's."""
    repredict = result.get("repredict") or {}
    state = repredict.get("state")
    if state == "failed":
        return f"; the faces nobody checked were not predicted again ({repredict.get('message')}): pre-label all " \
               "images again when nothing else is running"
    if state == "cancelled":
        return f"; only {repredict.get('predicted')} of {repredict.get('total')} unchecked faces were predicted " \
               "again before the cancel: pre-label all images again for the rest"
    if state == "done" and repredict.get("failed"):
        return f"; {repredict['failed']} of {repredict.get('total')} faces could not be predicted again"
    return ""


def _summary_message(result: dict[str, Any]) -> str:
    score = _fmt(result["score"])
    if result["promoted"]:
        return f"{result['task']} {result['version']} is now active ({result['metric']} {score}): " \
               f"{result['reason']}{repredict_outcome(result)}"
    return f"{result['task']} {result['version']} saved but not activated ({result['metric']} {score}): " \
           f"{result['reason']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faceparse.core.train_worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", required=True)
    parser.add_argument("--job-id", type=int, help="the job row to run (its params are the options)")
    parser.add_argument("--config", default="{}", help="JSON training options (override the job's params)")
    parser.add_argument("--events", choices=("json", "text"), default="json",
                        help="json: one event per line on stdout (for JobRunner); text: readable log on stderr")
    args = parser.parse_args(argv)
    stream = _event_stream(args.events)
    overrides = json.loads(args.config)
    distributed = _init_distributed(str(overrides.get("device", "auto")))
    rank = int(os.environ.get("RANK", "0")) if distributed else 0
    store = ProjectStore.open(args.project)
    try:
        if rank == 0:
            return _run_main_rank(store, args.job_id, overrides, stream, args.events == "text", distributed)
        return _run_other_rank(store, overrides, distributed)
    finally:
        store.close()
        if distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def _share_job_id(job_id: int, distributed: bool) -> int:
    if not distributed:
        return job_id
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([job_id], dtype=torch.int64)
    dist.broadcast(tensor, src=0)
    return int(tensor.item())


def _run_main_rank(store: ProjectStore, job_id: int | None, overrides: dict[str, Any], stream: Any, echo: bool,
                   distributed: bool) -> int:
    from faceparse.core.jobs import describe_error

    lock = training_lock(store)
    deadline = time.monotonic() + LOCK_WAIT_S
    while not lock.acquire():
        if time.monotonic() > deadline:
            message = "another training job is running on this project; wait for it or cancel it first"
            if job_id is not None:
                JobReporter(store, job_id, stream).finish("failed", message)
            else:
                print(message, file=sys.stderr)
            _share_job_id(-1, distributed)
            return 1
        time.sleep(0.2)
    reporter = None
    try:
        if job_id is None:
            job_id = store.add_job("retrain", overrides)
        job = store.job(job_id)
        if job is None:
            raise ProjectError(f"no job {job_id} in {store.root}")
        params = {**job["params"], **overrides}
        reporter = JobReporter(store, job_id, stream, echo=echo)
        reporter.start()
        reporter.start_watching()
        _share_job_id(job_id, distributed)
        from faceparse.core.recipes import TrainConfig

        config = TrainConfig.from_dict(params)
        reporter.log("options " + json.dumps(config.to_dict()))
        work_dir = job_work_dir(store, job_id)
        try:
            result = run_retrain(store, config, reporter, work_dir)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        reporter.finish("done", _summary_message(result), result)
        return 0
    except BaseException as error:
        if reporter is None:
            raise
        return _finish_with_error(reporter, error, describe_error)
    finally:
        lock.release()


def _finish_with_error(reporter: JobReporter, error: BaseException, describe: Callable) -> int:
    from faceparse.core.checkpoint import CheckpointError
    from faceparse.core.datasets import DatasetError
    from faceparse.core.evaluate import EvaluationError
    from faceparse.core.recipes import ConfigError
    from faceparse.core.trainer import TrainingCancelled, TrainingDiverged

    if isinstance(error, (TrainingCancelled, KeyboardInterrupt)):
        reporter.finish("cancelled", reporter.cancel_message())
        return CANCELLED_EXIT
    if isinstance(error, (ConfigError, DatasetError, ProjectError, CheckpointError, EvaluationError,
                          TrainingDiverged)) and not is_out_of_memory(error):
        reporter.log(f"{type(error).__name__}: {error}")
        reporter.finish("failed", f"{error}; the previous model is still active")
        return 1
    reporter.fail_with_exception(error, PHASE_DOING.get(reporter.phase, reporter.phase))
    return 1


def _run_other_rank(store: ProjectStore, overrides: dict[str, Any], distributed: bool) -> int:
    job_id = _share_job_id(0, distributed)
    if job_id < 0:
        return 1
    from faceparse.core.recipes import TrainConfig

    params = dict((store.job(job_id) or {}).get("params", {}))
    params.update(overrides)
    config = TrainConfig.from_dict(params)
    run_retrain(store, config, SilentReporter(), job_work_dir(store, job_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
