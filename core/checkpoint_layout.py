"""The files of a checkpoint folder, named apart from the code that reads them, so that finding or listing
checkpoints (the studio's model panel) does not load PyTorch."""

import os
from pathlib import Path

WEIGHTS_NAME = "model.safetensors"
META_NAME = "meta.json"


def has_checkpoint(folder: str | os.PathLike | None) -> bool:
    """Whether `folder` holds both files of a checkpoint (a version whose files were deleted does not)."""
    return folder is not None and all((Path(folder) / name).is_file() for name in (WEIGHTS_NAME, META_NAME))
