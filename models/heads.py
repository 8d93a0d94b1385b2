"""Masked pre-training heads: the same network body learns first to reconstruct images, then to parse faces.

Following the masked-pre-training papers (seeds 000/001), the "encoder" that is pre-trained is the whole smp body
(encoder and decoder), whose last feature map feeds a single convolution: the reconstruction head (3 channels)
during pre-training, the face-parsing head (one channel per class, smp's own segmentation head) afterwards.
`MaskedPretrainNet` wraps a freshly built parser's body with a reconstruction head shaped like that parser's
segmentation head (same kernel and upsampling), and `transfer_pretrained_body` moves the learned body into a parser
whose segmentation head stays newly initialised.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .registry import build_model, get_architecture

RECONSTRUCTION_CHANNELS = 3


def one_conv_head(
    in_channels: int, out_channels: int, kernel_size: int = 3, upsampling: float = 1.0
) -> nn.Sequential:
    """A single convolution, plus bilinear upsampling when the body's features are coarser than the input."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)]
    if upsampling > 1:
        layers.append(nn.Upsample(scale_factor=upsampling, mode="bilinear", align_corners=True))
    return nn.Sequential(*layers)


def _head_geometry(segmentation_head: nn.Module) -> tuple[int, int, float]:
    conv = next(module for module in segmentation_head.modules() if isinstance(module, nn.Conv2d))
    upsampling = 1.0
    for module in segmentation_head.modules():
        if isinstance(module, nn.Upsample) and module.scale_factor is not None:
            upsampling = float(module.scale_factor)
    return conv.in_channels, conv.kernel_size[0], upsampling


class MaskedPretrainNet(nn.Module):
    """Parser body + one-convolution reconstruction head; forward returns N×3×H×W in the input's units."""

    def __init__(self, architecture: str, **arch_args: Any):
        super().__init__()
        spec = get_architecture(architecture)
        if spec.task != "parser":
            raise ValueError(
                f"masked pre-training needs an smp face parser; {architecture!r} is a {spec.task} model"
            )
        pretrained = bool(arch_args.pop("pretrained", False))
        arch_args.pop("classes", None)
        template = build_model(architecture, classes=1, pretrained=pretrained, **arch_args)
        self.architecture = architecture
        self.arch_args = arch_args
        self.encoder = template.encoder
        self.decoder = template.decoder
        in_channels, kernel_size, upsampling = _head_geometry(template.segmentation_head)
        self.reconstruction_head = one_conv_head(
            in_channels, RECONSTRUCTION_CHANNELS, kernel_size, upsampling
        )

    @classmethod
    def from_parser(cls, parser: nn.Module, architecture: str, **arch_args: Any) -> MaskedPretrainNet:
        """Start pre-training from an existing parser's body (for example an ImageNet-initialised one)."""
        net = cls(architecture, **arch_args)
        net.encoder.load_state_dict(parser.encoder.state_dict())
        net.decoder.load_state_dict(parser.decoder.state_dict())
        return net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        return self.reconstruction_head(self.decoder(features))

    def make_parser(self, classes: int) -> nn.Module:
        """A new parser of the same architecture carrying this body and a fresh face-parsing head."""
        parser = build_model(self.architecture, classes=classes, **self.arch_args)
        transfer_pretrained_body(self, parser)
        return parser


def transfer_pretrained_body(pretrain_net: MaskedPretrainNet, parser: nn.Module) -> None:
    """Copy the pre-trained encoder and decoder into `parser`; its segmentation head is left as it is.

    Raises ValueError if the parser's body has other tensors than the pre-trained one (another architecture).
    """
    for part in ("encoder", "decoder"):
        source = getattr(pretrain_net, part).state_dict()
        target_module = getattr(parser, part, None)
        if target_module is None:
            raise ValueError(f"the parser has no {part}; cannot move a pre-trained body into it")
        target = target_module.state_dict()
        mismatched = [k for k in target if k not in source or source[k].shape != target[k].shape]
        extra = [k for k in source if k not in target]
        if mismatched or extra:
            raise ValueError(
                f"pre-trained {part} ({pretrain_net.architecture}) does not fit the parser: "
                f"{len(mismatched)} tensors missing or of another shape, {len(extra)} unexpected"
            )
        target_module.load_state_dict(source)
