"""Networks and losses for face parsing and face-mask segmentation: pure `nn.Module`s, no files, no GUI.

The hub switch is set before segmentation-models-pytorch is imported: its encoders fetch weights from a model hub
by default, which hangs on a machine without a network. Every builder here passes `encoder_weights=None`; the only
ImageNet weights ever used are the installed MobileNetV2 file (see `pretrained.py`).
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

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

_LAZY = {"ABANet": "abanet", "MaskedPretrainNet": "heads", "transfer_pretrained_body": "heads"}


def __getattr__(name: str):
    """The networks themselves load PyTorch, so they are imported on first use, not with the catalogue."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
