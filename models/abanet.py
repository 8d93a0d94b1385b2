"""ABANet: the attention boundary-aware network that segments face masks (MFSD paper, seed 003).

Layout, from the paper and the BASNet family it extends:
- encoder: a 3×3/64 input convolution at full resolution, then six residual stages — ResNet-34's four
  (3, 4, 6, 3 basic blocks; 64, 128, 256, 512 filters; no stem downsampling) and two more of three blocks with
  512 filters, each after a 2×2 max-pool — so stage k works at 1/2^(k-1) of the input;
- bridge: three 3×3 convolutions with 512 filters and dilation 2 at 1/32;
- decoder: six stages of three 3×3 convolutions, each fed the upsampled previous stage and the encoder skip at
  its resolution; the skips of stages 4, 5 and 6 pass through attention gates driven by the coarser decoder
  feature (the bridge for stage 6);
- side outputs: a 3×3 convolution on the bridge and on every decoder stage, upsampled to the input (7 maps);
- refinement: a residual U-Net (four levels, 64 filters) adds a correction to the finest side output.

Output channels: ABANet predicts one mask logit z per pixel, as the paper's sigmoid-based hybrid loss needs, and
returns it as the two-class logits [-z/2, z/2] (classes = 2: background, mask). Softmax over those gives exactly
sigmoid(z) for "mask", so the inference code can argmax every model the same way, and `losses.binary_logit`
recovers z. `width` scales every channel count (ResNet-34's 64…512 times width, at least 8): 1.0 is the paper's
network; 0.25 keeps the layout at about 1/16 of the parameters and FLOPs, which is what a 2-core CPU can train and
what ships as the starter model. Training mode returns the eight side outputs (refined first, then decoder stages 1..6, then the
bridge), each N×2×H×W; eval mode returns only the refined N×2×H×W logits. H and W must be multiples of 32.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn import functional as F

from .pretrained import PretrainedWeightsWarning

ABANET_CLASSES = 2
INPUT_MULTIPLE = 32


def conv_bn_relu(in_channels: int, out_channels: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class BasicBlock(nn.Module):
    """ResNet-34's residual block: two 3×3 convolutions and an identity (or 1×1 projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x), inplace=True)


def residual_stage(in_channels: int, out_channels: int, blocks: int, stride: int = 1, pool: bool = False):
    layers: list[nn.Module] = [nn.MaxPool2d(2, 2)] if pool else []
    layers.append(BasicBlock(in_channels, out_channels, stride))
    layers.extend(BasicBlock(out_channels, out_channels) for _ in range(blocks - 1))
    return nn.Sequential(*layers)


class AttentionGate(nn.Module):
    """Weights a skip connection by where the coarser decoder feature says the object is.

    W_x is a 1×1 convolution with stride 2 when the gate is at half the skip's resolution (stride 1 when equal);
    W_g is a 1×1 convolution on the gate; ReLU of their sum, a 1×1 convolution to one channel and a sigmoid give
    the attention map ψ, which is upsampled to the skip's size and multiplies it.
    """

    def __init__(self, skip_channels: int, gate_channels: int, inter_channels: int, stride: int):
        super().__init__()
        self.theta_x = nn.Conv2d(skip_channels, inter_channels, 1, stride=stride, bias=False)
        self.phi_g = nn.Conv2d(gate_channels, inter_channels, 1, bias=True)
        self.psi = nn.Sequential(nn.Conv2d(inter_channels, 1, 1, bias=True), nn.BatchNorm2d(1), nn.Sigmoid())

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        attention = self.psi(F.relu(self.theta_x(skip) + self.phi_g(gate)))
        if attention.shape[-2:] != skip.shape[-2:]:
            attention = F.interpolate(attention, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return skip * attention


class DecoderStage(nn.Module):
    """Three 3×3 convolutions over [upsampled coarser feature, skip]."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int):
        super().__init__()
        self.convs = nn.Sequential(
            conv_bn_relu(in_channels, mid_channels),
            conv_bn_relu(mid_channels, mid_channels),
            conv_bn_relu(mid_channels, out_channels),
        )

    def forward(self, coarser: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if coarser.shape[-2:] != skip.shape[-2:]:
            coarser = F.interpolate(coarser, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.convs(torch.cat([coarser, skip], dim=1))


class RefinementNet(nn.Module):
    """Residual encoder-decoder (four levels, 64 filters) that learns a correction to a coarse logit map."""

    def __init__(self, channels: int = 64, levels: int = 4):
        super().__init__()
        self.stem = nn.Conv2d(1, channels, 3, padding=1)
        self.down = nn.ModuleList(conv_bn_relu(channels, channels) for _ in range(levels))
        self.bottom = conv_bn_relu(channels, channels)
        self.up = nn.ModuleList(conv_bn_relu(2 * channels, channels) for _ in range(levels))
        self.out = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, coarse: torch.Tensor) -> torch.Tensor:
        x = self.stem(coarse)
        skips = []
        for level in self.down:
            x = level(x)
            skips.append(x)
            x = F.max_pool2d(x, 2, 2)
        x = self.bottom(x)
        for level, skip in zip(self.up, reversed(skips), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = level(torch.cat([x, skip], dim=1))
        return coarse + self.out(x)


def as_two_class_logits(logit: torch.Tensor) -> torch.Tensor:
    """[-z/2, z/2]: softmax of these equals (1 - sigmoid(z), sigmoid(z))."""
    half = 0.5 * logit
    return torch.cat([-half, half], dim=1)


class ABANet(nn.Module):
    """Binary face-mask segmenter; see the module docstring for its layout and outputs."""

    def __init__(self, classes: int = ABANET_CLASSES, pretrained: bool = False, width: float = 1.0):
        super().__init__()
        if classes != ABANET_CLASSES:
            raise ValueError(
                f"ABANet is a binary segmenter with {ABANET_CLASSES} output classes (background, mask); "
                f"got classes={classes}"
            )
        if not 0 < width <= 1:
            raise ValueError(f"width must be in (0, 1], got {width}")
        if pretrained:
            warnings.warn(
                "no offline ImageNet weights ship for abanet; it starts from random init",
                PretrainedWeightsWarning,
                stacklevel=2,
            )
        self.classes = classes
        self.width = width

        def ch(n: int) -> int:
            return max(8, int(round(n * width)))

        c64, c128, c256, c512 = ch(64), ch(128), ch(256), ch(512)
        self.stem = conv_bn_relu(3, c64)
        self.encoder = nn.ModuleList(
            [
                residual_stage(c64, c64, 3),
                residual_stage(c64, c128, 4, stride=2),
                residual_stage(c128, c256, 6, stride=2),
                residual_stage(c256, c512, 3, stride=2),
                residual_stage(c512, c512, 3, pool=True),
                residual_stage(c512, c512, 3, pool=True),
            ]
        )
        self.bridge = nn.Sequential(*(conv_bn_relu(c512, c512, dilation=2) for _ in range(3)))
        self.gates = nn.ModuleDict(
            {
                "6": AttentionGate(c512, c512, c256, stride=1),
                "5": AttentionGate(c512, c512, c256, stride=2),
                "4": AttentionGate(c512, c512, c256, stride=2),
            }
        )
        self.decoder = nn.ModuleList(
            [
                DecoderStage(c64 + c64, c64, c64),
                DecoderStage(c128 + c128, c128, c64),
                DecoderStage(c256 + c256, c256, c128),
                DecoderStage(c512 + c512, c512, c256),
                DecoderStage(c512 + c512, c512, c512),
                DecoderStage(c512 + c512, c512, c512),
            ]
        )
        decoder_out = [c64, c64, c128, c256, c512, c512]
        self.side_heads = nn.ModuleList(nn.Conv2d(c, 1, 3, padding=1) for c in decoder_out)
        self.bridge_head = nn.Conv2d(c512, 1, 3, padding=1)
        self.refine = RefinementNet(channels=c64)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        size = x.shape[-2:]
        skips = []
        h = self.stem(x)
        for stage in self.encoder:
            h = stage(h)
            skips.append(h)
        bridge = self.bridge(h)

        decoded: list[torch.Tensor] = []
        coarser = bridge
        for index in reversed(range(len(self.decoder))):
            skip = skips[index]
            stage_name = str(index + 1)
            if stage_name in self.gates:
                skip = self.gates[stage_name](skip, coarser)
            coarser = self.decoder[index](coarser, skip)
            decoded.insert(0, coarser)

        finest = self.side_heads[0](decoded[0])
        refined = self.refine(finest)
        if not self.training:
            return as_two_class_logits(refined)

        sides = [refined, finest]
        for head, feature in zip(self.side_heads[1:], decoded[1:], strict=True):
            sides.append(F.interpolate(head(feature), size=size, mode="bilinear", align_corners=False))
        sides.append(F.interpolate(self.bridge_head(bridge), size=size, mode="bilinear", align_corners=False))
        return [as_two_class_logits(side) for side in sides]
