"""Two training processes stop together when the loss stops being a number on one of them: the one whose loss
is fine must not wait for ever for gradients the other will never send."""

import datetime
import os
import socket

import torch
import torch.multiprocessing as mp
from faceparse.core.trainer import FitConfig, TrainingDiverged, fit
from torch import nn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, results) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=datetime.timedelta(seconds=60))
    torch.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(nn.Conv2d(3, 2, 1))
    x, y = torch.rand(2, 3, 4, 4), torch.randint(0, 2, (2, 4, 4))

    def loss_fn(out, target):
        loss = nn.functional.cross_entropy(out, target)
        return loss * float("nan") if rank == 1 else loss

    try:
        fit(model, loss_fn, lambda epoch: [(x, y)] * 3, None, FitConfig(epochs=1, steps_per_epoch=3, lr=0.1))
        results.put((rank, "finished"))
    except TrainingDiverged as e:
        results.put((rank, str(e)))
    finally:
        dist.destroy_process_group()


def test_a_loss_that_diverges_on_one_process_stops_every_process():
    context = mp.get_context("spawn")
    results = context.Queue()
    port = _free_port()
    procs = [context.Process(target=_worker, args=(rank, port, results)) for rank in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    alive = [p for p in procs if p.is_alive()]
    for proc in alive:
        proc.kill()
    assert not alive, "a process was left waiting"
    outcome = dict(results.get(timeout=5) for _ in range(2))
    assert "nan" in outcome[1]
    assert "another process" in outcome[0]

