"""Networks and losses for face parsing and face-mask segmentation: pure `nn.Module`s, no files, no GUI.

The hub switch is set before segmentation-models-pytorch is imported: its encoders fetch weights from a model hub
by default, which hangs on a machine without a network. Every builder here passes `encoder_weights=None`; the only
ImageNet weights ever used are the installed MobileNetV2 file (see `pretrained.py`).
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from .abanet import ABANet  # noqa: E402
from .heads import MaskedPretrainNet, transfer_pretrained_body  # noqa: E402
from .registry import (  # noqa: E402
    DEFAULT_MASK_SEGMENTER,
    DEFAULT_PARSER,
    INPUT_MULTIPLE,
    ArchitectureSpec,
    UnknownArchitectureError,
    build_model,
    get_architecture,
    list_architectures,
)

__all__ = [
    "ABANet",
    "ArchitectureSpec",
    "DEFAULT_MASK_SEGMENTER",
    "DEFAULT_PARSER",
    "INPUT_MULTIPLE",
    "MaskedPretrainNet",
    "UnknownArchitectureError",
    "build_model",
    "get_architecture",
    "list_architectures",
    "transfer_pretrained_body",
]
