"""Training recipes: what "retrain the parser" and "retrain the mask segmenter" mean, with defaults for a small CPU.

A `TrainConfig` is every knob of one retrain job, JSON-able (it travels to the worker process on its command line
and is stored with the job). `TrainConfig.for_task(task, **overrides)` starts from the task's defaults; unknown
keys are an error, so a typo never silently trains with a default.

Recipes (the papers this tool comes from):
- parser: DeepLabV3+ MobileNetV2 (ImageNet encoder), cross-entropy in focal form (γ = 0 is plain cross-entropy)
  plus soft dice, 0.5/0.5, with square-root inverse-frequency class weights so rare classes are not ignored;
  AdamW with warm-up and a cosine schedule. Defaults follow FINDINGS.md: 256 px, batch 8 is ~0.13 s per image per
  epoch on two cores.
- mask: ABANet with the hybrid focal (α = 0.3, γ = 2) + SSIM + IoU loss summed over its eight side outputs and
  Adam (seed 003). The paper's full-width ABANet (88 M parameters) takes seconds per step on two cores, so the CPU
  default keeps its layout at a quarter of the channels (`arch_args` {"width": 0.25}, ~1/16 of the parameters),
  192 px, batch 8, the width the shipped starter mask model uses. A new version keeps the network options of the
  model it starts from.
Input size: a retrain carries on at the size the model it starts from works at (its meta.json's input_size: 512 px
for the shipped starter parser, 256 px for the starter mask model), since a model fine-tuned at another size first
loses much of what it learned; the recipe's size (`Recipe.input_size`, above) is for training from ImageNet or
random weights. An `input_size` given in the options always wins.
Both: augmentation as in the papers (rotation ±15° for fine-tuning, ±30° for pre-training; scale 0.8–1.2; shift;
shear; horizontal flip that swaps the schema's left/right classes; colour jitter), validation every epoch on the
project's fixed validation images, early stopping after `patience` epochs without improvement, and a time limit
that shortens the schedule (not just cuts it) once the speed of the machine is known.

The score that decides promotion is `primary_metric`: mIoU over the foreground classes for the parser (as the
face-parsing papers report it), IoU of the mask class for the segmenter.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from faceparse.core.augment import IMAGENET_MEAN, IMAGENET_STD, AugmentConfig
from faceparse.core.datasets import TASKS, DatasetSnapshot, class_weights
from faceparse.models.registry import DEFAULT_MASK_SEGMENTER, DEFAULT_PARSER, INPUT_MULTIPLE, get_architecture

if TYPE_CHECKING:  # PyTorch is loaded by the training job, not by whoever only reads or checks a recipe
    import torch
    from torch import nn

PROMOTE_MODES = ("auto", "force", "never")
AUGMENTATIONS = ("finetune", "pretrain", "none")
INIT_MODES = ("auto", "imagenet", "scratch")


class ConfigError(ValueError):
    """A training option has a value that cannot work; the message names it."""


def _options(hint: Any) -> tuple[Any, ...]:
    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def _accepts(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's type (a number for a float, a whole number for an int, no bool for
    either), so a quoted number or a fraction of an epoch is an error before the job starts."""
    for option in _options(hint):
        base = typing.get_origin(option) or option
        if base is Any or (option is type(None) and value is None):
            return True
        if base is bool and isinstance(value, bool):
            return True
        if isinstance(value, bool):
            continue
        if (base is int and isinstance(value, int)) or (base is float and isinstance(value, int | float)):
            return True
        if base in (str, dict) and isinstance(value, base):
            return True
    return False


def _describe(hint: Any) -> str:
    words = {bool: "true or false", int: "a whole number", float: "a number", str: "a text", dict: "an object",
             type(None): "null"}
    return " or ".join(words.get(typing.get_origin(o) or o, str(o)) for o in _options(hint))


EXTRA_OPTIONS = {
    "pretrain_steps": "masked pre-training steps, 300 by default",
    "pretrain_images": "the most photos masked pre-training reads",
    "pretrain_min_images": "the fewest photos masked pre-training runs on",
}
"""Options of the masked pre-training phase: given in `extra`, or at the top level of a job's options."""


def _extra_options_moved(data: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """`{"pretrain_steps": 50}` as `{"extra": {"pretrain_steps": 50}}`, the form the job keeps."""
    moved = {k: v for k, v in data.items() if k in EXTRA_OPTIONS and k not in known}
    if not moved:
        return data
    rest = {k: v for k, v in data.items() if k not in moved}
    extra = rest.get("extra") or {}
    if not isinstance(extra, dict):
        raise ConfigError(f"extra must be an object of options, got {extra!r}")
    return {**rest, "extra": {**extra, **moved}}


@dataclass
class TrainConfig:
    task: str = "parser"
    architecture: str | None = None  # None: the task's default network
    arch_args: dict[str, Any] | None = None  # None: the start model's (same network), else the recipe's
    input_size: int | None = None  # None: the start model's own size, else the recipe's (see settle_input_size)
    batch_size: int = 8
    epochs: int = 30
    patience: int = 5  # epochs without a better validation score before stopping; 0 never stops early
    lr: float | None = None  # None: the recipe's rate (lower when fine-tuning a trained model)
    weight_decay: float = 1e-4
    time_limit_s: float | None = 1800.0
    max_steps: int | None = None
    init: str = "auto"  # "auto" (active model, else starter, else ImageNet), "imagenet", "scratch" or a version
    focal_gamma: float = 0.0
    use_class_weights: bool = True
    augment: str = "finetune"
    seed: int = 0
    threads: int | None = None  # torch threads; None leaves torch's default
    device: str = "auto"  # "auto" (CUDA when there is one), "cpu", "cuda" or "cuda:N"
    channels_last: bool = True
    max_side: int | None = None  # snapshot images are downscaled to this; None: twice the input size
    export_onnx: bool = True
    promote: str = "auto"  # "auto": only if better on the validation set; "force"; "never"
    min_improvement: float = 0.0
    repredict: bool = True
    pretrain: bool | str = "auto"  # masked pre-training phase: True, False or "auto" (see train_worker)
    extra: dict[str, Any] = field(default_factory=dict)  # options for plugged-in phases (e.g. pre-training)

    @classmethod
    def for_task(cls, task: str = "parser", **overrides: Any) -> TrainConfig:
        """The task's defaults with `overrides` applied; None means "keep the default" (use from_dict to clear)."""
        return cls.from_dict({**{k: v for k, v in overrides.items() if v is not None}, "task": task})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Options not given take the task's defaults (then the dataclass defaults)."""
        known = {f.name for f in dataclasses.fields(cls)}
        data = _extra_options_moved(data, known)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown training option(s) {', '.join(unknown)}; known: "
                              f"{', '.join(sorted(known | set(EXTRA_OPTIONS)))}")
        task = data.get("task", "parser")
        config = cls(**{**get_recipe(task).defaults, **data})
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def network(self) -> str:
        return self.architecture or get_recipe(self.task).architecture

    def validate(self) -> None:
        """Raise ConfigError naming the first option that cannot work, so a bad job fails before it starts."""
        self._check_types()
        self._check_network()
        self._check_sizes_and_limits()
        self._check_modes()
        self._check_start_and_device()

    def _check_types(self) -> None:
        """Types come first: the checks after this one compare numbers and would fail on a quoted one."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not _accepts(value, hints[f.name]):
                raise ConfigError(f"{f.name} must be {_describe(hints[f.name])}, got {value!r}")

    def _check_network(self) -> None:
        """The network must exist and belong to the task, since it decides what the trained model predicts."""
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        try:
            spec = get_architecture(self.network)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if spec.task != self.task:
            raise ConfigError(f"architecture {spec.name!r} is a {spec.task} network, not a {self.task} one")

    def _check_sizes_and_limits(self) -> None:
        """Numbers of the right type that training cannot use (too small a batch, no epochs, a negative rate)."""
        if self.input_size is not None and (self.input_size < INPUT_MULTIPLE or self.input_size % INPUT_MULTIPLE):
            raise ConfigError(f"input_size must be a multiple of {INPUT_MULTIPLE} (at least {INPUT_MULTIPLE}), "
                              f"got {self.input_size}")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be at least 2 (batch normalisation needs two samples)")
        if self.epochs < 1:
            raise ConfigError("epochs must be at least 1")
        if self.patience < 0:
            raise ConfigError("patience must be 0 (off) or more")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive number, got {self.lr}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError("threads must be at least 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("max_steps must be at least 1")
        if self.time_limit_s is not None and not (math.isfinite(self.time_limit_s) and self.time_limit_s > 0):
            raise ConfigError(f"time_limit_s must be a finite number of seconds above 0 (null for no limit), "
                              f"got {self.time_limit_s}")
        if self.max_side is not None and self.max_side < max(self.input_size or INPUT_MULTIPLE, INPUT_MULTIPLE):
            least = f"the input size, {self.input_size} px" if self.input_size else "the input size"
            raise ConfigError(f"max_side must be null or at least {least}, got {self.max_side}")
        if self.seed < 0:
            raise ConfigError(f"seed must be 0 or more, got {self.seed}")
        for name in ("weight_decay", "focal_gamma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number of 0 or more, got {value}")
        if not math.isfinite(self.min_improvement):
            raise ConfigError(f"min_improvement must be a finite number, got {self.min_improvement}")

    def _check_modes(self) -> None:
        """Texts that name one of a fixed set of behaviours, checked so that a typo never reaches the job."""
        if self.promote not in PROMOTE_MODES:
            raise ConfigError(f"promote must be one of {', '.join(PROMOTE_MODES)}, got {self.promote!r}")
        if self.augment not in AUGMENTATIONS:
            raise ConfigError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {self.augment!r}")
        if self.pretrain not in (True, False, "auto"):
            raise ConfigError(f"pretrain must be true, false or \"auto\", got {self.pretrain!r}")
        unknown = sorted(set(self.extra) - set(EXTRA_OPTIONS))
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)} in extra; known: {', '.join(EXTRA_OPTIONS)}")
        for name, value in self.extra.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number of at least 1 ({EXTRA_OPTIONS[name]}), "
                                  f"got {value!r}")

    def _check_start_and_device(self) -> None:
        """What the network is built with, starts from and runs on (its classes and weights are the job's)."""
        if self.arch_args is not None and (not isinstance(self.arch_args, dict) or
                                           {"classes", "pretrained"} & set(self.arch_args)):
            raise ConfigError("arch_args must be an object of network options (not classes or pretrained)")
        unknown_args = _unknown_network_options(self.network, self.arch_args) if self.arch_args else []
        if unknown_args:
            raise ConfigError(f"arch_args {', '.join(unknown_args)} {'is' if len(unknown_args) == 1 else 'are'} not "
                              f"an option of the network {self.network!r}")
        if not isinstance(self.init, str) or not self.init:
            raise ConfigError("init must be auto, imagenet, scratch or a model version")
        if not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            raise ConfigError(f"device must be auto, cpu or cuda[:N], got {self.device!r}")
        if self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ConfigError(f"device {self.device!r} was asked for, but PyTorch finds no CUDA GPU here; use "
                                  "auto or cpu")

    def augmentation(self) -> AugmentConfig:
        """The papers' augmentation; the mask task's hybrid loss cannot ignore pixels, so its masks are filled
        at the border by reflection, exactly as the picture is."""
        config = {"finetune": AugmentConfig.finetune, "pretrain": AugmentConfig.pretrain,
                  "none": AugmentConfig.none}[self.augment]()
        return dataclasses.replace(config, reflect_masks=self.task == "mask")

    def settle_input_size(self, start_size: int | None) -> None:
        """Fix the size before any data is read (the snapshot is downscaled for it): the one asked for, else the
        start model's own (`start_size`, None when training starts from no trained model), else the recipe's."""
        if self.input_size is None:
            self.input_size = start_size or get_recipe(self.task).input_size
            self.validate()

    def snapshot_side(self) -> int:
        if self.input_size is None:
            raise ConfigError("the input size is decided by the start model; settle_input_size comes first")
        return self.max_side or 2 * self.input_size


@dataclass(frozen=True)
class Recipe:
    """How one task is trained and scored."""

    task: str
    architecture: str
    defaults: dict[str, Any]
    fresh_lr: float  # starting from ImageNet or random weights
    finetune_lr: float  # continuing from a trained model of this task
    primary_metric: str
    input_size: int = 256  # when training starts from ImageNet or random weights; a retrain keeps its model's
    optimizer: str = "adamw"
    arch_args: dict[str, Any] = field(default_factory=dict)  # network options when nothing else decides them

    def learning_rate(self, config: TrainConfig, from_trained: bool) -> float:
        if config.lr is not None:
            return config.lr
        return self.finetune_lr if from_trained else self.fresh_lr

    def loss(self, config: TrainConfig, snapshot: DatasetSnapshot) -> nn.Module:
        import torch
        from faceparse.models.losses import HybridMaskLoss, ParsingLoss

        if self.task == "mask":
            return HybridMaskLoss()
        weights = None
        if config.use_class_weights:
            weights = torch.from_numpy(class_weights(snapshot.class_pixels()))
        return ParsingLoss(0.5, 0.5, focal_gamma=config.focal_gamma, class_weights=weights)

    def score(self, metrics: dict[str, Any] | None) -> float:
        """The number promotion compares; NaN when there is nothing to measure."""
        if not metrics:
            return float("nan")
        value = metrics.get(self.primary_metric)
        return float("nan") if value is None else float(value)


RECIPES: dict[str, Recipe] = {
    "parser": Recipe("parser", DEFAULT_PARSER, {"batch_size": 8, "epochs": 30},
                     fresh_lr=1e-3, finetune_lr=3e-4, primary_metric="miou_no_bg", input_size=256),
    "mask": Recipe("mask", DEFAULT_MASK_SEGMENTER, {"batch_size": 8, "epochs": 20},
                   fresh_lr=1e-3, finetune_lr=3e-4, primary_metric="iou", input_size=192, optimizer="adam",
                   arch_args={"width": 0.25}),
}


def get_recipe(task: str) -> Recipe:
    try:
        return RECIPES[task]
    except KeyError:
        raise ConfigError(f"unknown task {task!r}; tasks: {', '.join(RECIPES)}") from None


def model_meta(config: TrainConfig, schema_json: dict, arch_args: dict[str, Any] | None = None,
               **fields: Any) -> dict[str, Any]:
    """Checkpoint metadata (docs/architecture.md) for a model trained with `config`."""
    return {
        "task": config.task,
        "architecture": config.network,
        "arch_args": {**(arch_args or {}), "classes": len(schema_json["classes"])},
        "schema": schema_json,
        "input_size": [config.input_size, config.input_size],
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        **fields,
    }


def resolve_device(config: TrainConfig, local_rank: int = 0) -> torch.device:
    import torch

    if config.device == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if config.device == "cuda":
        return torch.device(f"cuda:{local_rank}")
    return torch.device(config.device)


def _unknown_network_options(network: str, arch_args: dict[str, Any]) -> list[str]:
    """The names in `arch_args` the network's builder does not take (none when it takes any keyword). Reading the
    builder imports PyTorch, so this runs only for options someone gave: the studio opens without it."""
    import inspect

    builder = get_architecture(network).builder
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return []
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return []
    return sorted(name for name in arch_args if name not in params)
