"""The files of a checkpoint folder, named apart from the code that reads them, so that finding or listing
checkpoints (the studio's model panel) does not load PyTorch."""

WEIGHTS_NAME = "model.safetensors"
META_NAME = "meta.json"
