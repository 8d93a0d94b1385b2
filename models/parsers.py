"""Face parsers: segmentation-models-pytorch networks chosen for the papers this tool comes from.

Each builder returns the plain smp model (the refined one adds only its `refinement.*` head), so its `state_dict`
keys are exactly smp's and weights trained elsewhere with the same smp call load unchanged. The encoders stride down to 1/32, so height and width must be multiples of
32 (`INPUT_MULTIPLE`); the output is N×classes×H×W logits at the input resolution.

- `deeplabv3plus_mobilenetv2`: the fast default (about 12 GFLOPs at 512²), with offline ImageNet weights.
- `deeplabv3plus_efficientnet_lite2`: the same decoder on EfficientNet-Lite2 (ImageNet top-1 about 77.6% against
  MobileNetV2's 72%), with offline ImageNet weights; about 1.3–1.8 times the default's training step.
- `deeplabv3plus_mobilenetv2_refined`: the default plus a small refinement head at 1/2 resolution (`EdgeRefinement`)
  that adds a correction to its logits from the encoder's first features. The correction starts at zero, so a
  trained default parser's weights load into it and give the very same output until it is fine-tuned.
- `unet_mobilenetv2`: the same encoder at stride 32 under a light UNet decoder whose skips reach 1/2 and full
  resolution, for thin parts (brows, eyes, ears); no slower to train than the default. Its encoder weights are the
  default's, so it can start from the ImageNet file or from a trained default parser's encoder.
- `unetplusplus_resnet50`: the masked-pre-training papers' network. smp's UNet++ decoder ends in 16 channels at full
  resolution and its segmentation head is one 3×3 convolution: exactly the papers' "one-convolution face-parsing
  decoder"; `heads.MaskedPretrainNet` swaps it for the one-convolution reconstruction head.
- `deeplabv3plus_resnet50`, `deeplabv3plus_mobilenetv3`: the deepfake-transfer paper's face segmenters. With
  `modified_aspp=True` the ASPP branches become (kernel, dilation) = (3, 1), (5, 4), (7, 8), (11, 16) as in that paper.
"""

from __future__ import annotations

import warnings

import segmentation_models_pytorch as smp
import torch
from torch import nn
from torch.nn import functional as F

from .efficientnet_lite import load_imagenet_efficientnet_lite2, with_static_same_padding
from .pretrained import PretrainedWeightsWarning, load_imagenet_mobilenet_v2

MODIFIED_ASPP_BRANCHES = ((3, 1), (5, 4), (7, 8), (11, 16))


def _warn_no_offline_weights(architecture: str) -> None:
    warnings.warn(
        f"no offline ImageNet weights ship for {architecture}; it starts from random init",
        PretrainedWeightsWarning,
        stacklevel=3,
    )


class SeparableConvBranch(nn.Sequential):
    """Depthwise k×k dilated convolution, pointwise projection, BN, ReLU: one ASPP branch at any kernel size."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int):
        super().__init__(
            nn.Conv2d(
                in_channels,
                in_channels,
                kernel_size,
                padding=dilation * (kernel_size - 1) // 2,
                dilation=dilation,
                groups=in_channels,
                bias=False,
            ),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )


class ImagePoolingBranch(nn.Module):
    """Global context: average the whole map, project, and spread it back over every position."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.project = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.project(F.adaptive_avg_pool2d(x, 1))
        return pooled.expand(-1, -1, x.shape[-2], x.shape[-1])


class ModifiedASPP(nn.Module):
    """ASPP whose kernels grow with the dilation rate, for wider context at the same depth (deepfake-transfer paper).

    Branches are depthwise-separable, like smp's DeepLabV3+ ASPP, which keeps the 11×11 kernels cheap on 2048 channels.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        branches: tuple[tuple[int, int], ...] = MODIFIED_ASPP_BRANCHES,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.branches = nn.ModuleList(
            SeparableConvBranch(in_channels, out_channels, kernel, dilation) for kernel, dilation in branches
        )
        self.pooling = ImagePoolingBranch(in_channels, out_channels)
        self.project = nn.Sequential(
            nn.Conv2d((len(branches) + 1) * out_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [branch(x) for branch in self.branches]
        outputs.append(self.pooling(x))
        return self.project(torch.cat(outputs, dim=1))


def _deeplabv3plus(encoder_name: str, classes: int, modified_aspp: bool) -> smp.DeepLabV3Plus:
    model = smp.DeepLabV3Plus(encoder_name=encoder_name, encoder_weights=None, classes=classes)
    if modified_aspp:
        standard = model.decoder.aspp[0]
        out_channels = standard.project[0].out_channels
        model.decoder.aspp[0] = ModifiedASPP(model.encoder.out_channels[-1], out_channels)
    return model


def deeplabv3plus_mobilenetv2(classes: int, pretrained: bool = False) -> smp.DeepLabV3Plus:
    model = _deeplabv3plus("mobilenet_v2", classes, modified_aspp=False)
    if pretrained:
        load_imagenet_mobilenet_v2(model.encoder)
    return model


def deeplabv3plus_efficientnet_lite2(classes: int, pretrained: bool = False) -> smp.DeepLabV3Plus:
    model = _deeplabv3plus("tu-tf_efficientnet_lite2", classes, modified_aspp=False)
    with_static_same_padding(model.encoder)
    if pretrained:
        load_imagenet_efficientnet_lite2(model.encoder)
    return model


class EdgeRefinement(nn.Module):
    """A correction to full-resolution logits, computed at 1/2 resolution from the decoder's 1/4-resolution features
    and the encoder's 1/2-resolution ones (where a brow's or an eyelid's edge still shows), then upsampled.

    Its last convolution starts at zero, so before training it changes nothing.
    """

    def __init__(self, decoder_channels: int, fine_channels: int, classes: int, width: int = 24):
        super().__init__()
        self.reduce = nn.Sequential(
            nn.Conv2d(decoder_channels, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.fuse = nn.Sequential(
            nn.Conv2d(width + fine_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        self.correction = nn.Conv2d(width, classes, 1)
        nn.init.zeros_(self.correction.weight)
        nn.init.zeros_(self.correction.bias)

    def forward(self, decoder_output: torch.Tensor, fine: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        coarse = F.interpolate(self.reduce(decoder_output), size=fine.shape[-2:], mode="bilinear",
                               align_corners=False)
        correction = self.correction(self.fuse(torch.cat([coarse, fine], dim=1)))
        return F.interpolate(correction, size=out_size, mode="bilinear", align_corners=False)


class RefinedDeepLabV3Plus(smp.DeepLabV3Plus):
    """DeepLabV3+ whose logits get an `EdgeRefinement` correction; its other weights are DeepLabV3+'s, key for key."""

    def __init__(self, encoder_name: str, classes: int):
        super().__init__(encoder_name=encoder_name, encoder_weights=None, classes=classes)
        self.refinement = EdgeRefinement(
            self.segmentation_head[0].in_channels, self.encoder.out_channels[1], classes
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling()):
            self.check_input_shape(x)
        features = self.encoder(x)
        decoder_output = self.decoder(features)
        logits = self.segmentation_head(decoder_output)
        return logits + self.refinement(decoder_output, features[1], logits.shape[-2:])


def deeplabv3plus_mobilenetv2_refined(classes: int, pretrained: bool = False) -> RefinedDeepLabV3Plus:
    model = RefinedDeepLabV3Plus("mobilenet_v2", classes)
    if pretrained:
        load_imagenet_mobilenet_v2(model.encoder)
    return model


UNET_LIGHT_DECODER = (128, 64, 48, 32, 16)


def unet_mobilenetv2(classes: int, pretrained: bool = False) -> smp.Unet:
    model = smp.Unet(
        encoder_name="mobilenet_v2", encoder_weights=None, classes=classes, decoder_channels=UNET_LIGHT_DECODER
    )
    if pretrained:
        load_imagenet_mobilenet_v2(model.encoder)
    return model


def unetplusplus_resnet50(classes: int, pretrained: bool = False) -> smp.UnetPlusPlus:
    if pretrained:
        _warn_no_offline_weights("unetplusplus_resnet50")
    return smp.UnetPlusPlus(encoder_name="resnet50", encoder_weights=None, classes=classes)


def deeplabv3plus_resnet50(
    classes: int, pretrained: bool = False, modified_aspp: bool = False
) -> smp.DeepLabV3Plus:
    if pretrained:
        _warn_no_offline_weights("deeplabv3plus_resnet50")
    return _deeplabv3plus("resnet50", classes, modified_aspp)


def deeplabv3plus_mobilenetv3(
    classes: int, pretrained: bool = False, modified_aspp: bool = False
) -> smp.DeepLabV3Plus:
    if pretrained:
        _warn_no_offline_weights("deeplabv3plus_mobilenetv3")
    return _deeplabv3plus("tu-mobilenetv3_large_100", classes, modified_aspp)
