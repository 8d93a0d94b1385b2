"""The training entry point under torchrun: two CPU processes (gloo) train one model with DistributedDataParallel."""

import json
import math
import os
import subprocess
import sys

from drawn_projects import make_project
from faceparse.core.checkpoint import load_checkpoint
from faceparse.core.store import ProjectStore


def test_two_gloo_processes_train_and_save_a_loadable_checkpoint(tmp_path):
    root = tmp_path / "faces"
    make_project(root, count=8, corrected=8)[0].close()
    config = {"input_size": 64, "batch_size": 2, "epochs": 1, "max_steps": 2, "threads": 1, "device": "cpu",
              "time_limit_s": None, "export_onnx": False, "repredict": False, "promote": "force"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "faceparse.core.train_worker", "--project", str(root), "--config", json.dumps(config),
               "--events", "text"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=1200, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with ProjectStore.open(root) as store:
        job = store.jobs(kind="retrain")[0]
        assert job["state"] == "done", job["message"]
        log = store.job_log(job["id"])
        assert any("training on 2 processes (gloo)" in line for line in log)
        active = store.active_model("parser")
        assert active["version"] == "v0001"
        model, meta = load_checkpoint(active["path"], expect_classes=store.schema)
        train = meta["training_data"]["train"]
        assert train + meta["training_data"]["val"] == 8
        assert meta["training_data"]["training"]["fit"]["steps"] == min(2, math.ceil(train / 4))
    assert sum(p.numel() for p in model.parameters()) > 0
