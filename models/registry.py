"""Architectures by name: the names stored in checkpoints and ONNX metadata map to the code that builds them.

A checkpoint records `architecture` and `arch_args`; `build_model(architecture, **arch_args)` rebuilds the same
network, so these names are a file format and never change meaning. Every builder accepts `classes` and `pretrained`
(only the MobileNetV2 and EfficientNet-Lite2 parsers have offline ImageNet weights; the others warn and start from
random init). Every model
maps N×3×H×W to N×classes×H×W logits in eval mode, with H and W multiples of `INPUT_MULTIPLE`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_MASK_SEGMENTER",
    "DEFAULT_PARSER",
    "INPUT_MULTIPLE",
    "ArchitectureSpec",
    "UnknownArchitectureError",
    "build_model",
    "get_architecture",
    "list_architectures",
]

INPUT_MULTIPLE = 32
"""Input sides must be multiples of this (the deepest encoder stride)."""
DEFAULT_PARSER = "deeplabv3plus_mobilenetv2"
DEFAULT_MASK_SEGMENTER = "abanet"


@dataclass(frozen=True)
class ArchitectureSpec:
    """An architecture's name, task and description; its builder is imported only when a network is built, so
    reading the catalogue (the studio's menus, a config check) does not load PyTorch."""

    name: str
    task: str  # "parser" (multi-class face parsing) or "mask" (binary face-mask segmentation)
    target: str  # "module:callable" inside this package
    summary: str
    grows_from: tuple[str, ...] = ()  # networks whose trained weights this one holds whole (it adds layers)

    @property
    def builder(self) -> Callable[..., nn.Module]:
        module, attr = self.target.split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), attr)


class UnknownArchitectureError(ValueError):
    """A checkpoint or caller named an architecture this version does not know."""


_SPECS = (
    ArchitectureSpec(
        "deeplabv3plus_mobilenetv2",
        "parser",
        "parsers:deeplabv3plus_mobilenetv2",
        "DeepLabV3+ with a MobileNetV2 encoder; fast default, offline ImageNet init",
    ),
    ArchitectureSpec(
        "deeplabv3plus_efficientnet_lite2",
        "parser",
        "parsers:deeplabv3plus_efficientnet_lite2",
        "DeepLabV3+ with an EfficientNet-Lite2 encoder; stronger encoder, offline ImageNet init",
    ),
    ArchitectureSpec(
        "deeplabv3plus_mobilenetv2_refined",
        "parser",
        "parsers:deeplabv3plus_mobilenetv2_refined",
        "The default parser plus a refinement head at half resolution; starts from the default's trained weights",
        grows_from=("deeplabv3plus_mobilenetv2",),
    ),
    ArchitectureSpec(
        "unet_mobilenetv2",
        "parser",
        "parsers:unet_mobilenetv2",
        "UNet with a MobileNetV2 encoder and a light decoder down to full resolution; offline ImageNet init",
    ),
    ArchitectureSpec(
        "unetplusplus_resnet50",
        "parser",
        "parsers:unetplusplus_resnet50",
        "UNet++ with a ResNet50 encoder and a one-convolution head (masked pre-training papers)",
    ),
    ArchitectureSpec(
        "deeplabv3plus_resnet50",
        "parser",
        "parsers:deeplabv3plus_resnet50",
        "DeepLabV3+ with a ResNet50 encoder; modified_aspp=True for the deepfake-transfer paper's ASPP",
    ),
    ArchitectureSpec(
        "deeplabv3plus_mobilenetv3",
        "parser",
        "parsers:deeplabv3plus_mobilenetv3",
        "DeepLabV3+ with a MobileNetV3-Large encoder; modified_aspp=True for the deepfake-transfer paper's ASPP",
    ),
    ArchitectureSpec(
        "abanet",
        "mask",
        "abanet:ABANet",
        "ABANet binary face-mask segmenter (2 classes: background, mask) with deep supervision",
    ),
)
ARCHITECTURES: dict[str, ArchitectureSpec] = {spec.name: spec for spec in _SPECS}


def list_architectures(task: str | None = None) -> list[str]:
    return [spec.name for spec in _SPECS if task is None or spec.task == task]


def get_architecture(name: str) -> ArchitectureSpec:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UnknownArchitectureError(
            f"unknown architecture {name!r}; known: {', '.join(list_architectures())}"
        ) from None


def build_model(name: str, **arch_args: Any) -> nn.Module:
    """Build a network by registry name with random init (or offline ImageNet init where `pretrained=True`)."""
    spec = get_architecture(name)
    if "classes" not in arch_args:
        raise TypeError(f"build_model({name!r}) needs classes=<number of output classes>")
    try:
        return spec.builder(**arch_args)
    except TypeError as error:
        raise TypeError(f"bad arguments for architecture {name!r} {sorted(arch_args)}: {error}") from error
