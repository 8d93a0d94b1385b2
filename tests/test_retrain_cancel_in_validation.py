"""Cancelling a retrain while it measures a model (a validation pass, minutes on a CPU) stops it at the next batch
of faces, not at the end of the pass."""

import threading
from types import SimpleNamespace

import numpy as np
import pytest
from faceparse.core.evaluate import EVAL_BATCH
from faceparse.core.recipes import TrainConfig
from faceparse.core.train_worker import RetrainContext, _measure_predictor
from faceparse.core.trainer import TrainingCancelled


class CountingPredictor:
    meta = {"schema": {"classes": ["background", "face"]}, "task": "parser", "input_size": [8, 8],
            "normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}

    def __init__(self):
        self.batches = 0

    def logits(self, batch):
        self.batches += 1
        return np.zeros((len(batch), 2, 8, 8), np.float32)


class CancelAfter:
    """A job reporter whose user presses Cancel once the first batch of faces has been predicted."""

    phase = "baseline"

    def __init__(self, predictor):
        self.predictor = predictor

    def cancelled(self):
        return self.predictor.batches >= 1


@pytest.mark.parametrize(("world", "batches"), [(1, 1), (2, 4)])
def test_a_cancel_during_measuring_stops_it_at_the_next_batch_when_training_alone(world, batches):
    predictor = CountingPredictor()
    faces = [(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)) for _ in range(4 * EVAL_BATCH)]
    ctx = RetrainContext(store=None, config=TrainConfig.for_task("parser"), reporter=CancelAfter(predictor),
                         dist=SimpleNamespace(world=world, is_main=True), work_dir=None, device="cpu",
                         cancel_event=threading.Event(), snapshot=SimpleNamespace(val=faces))
    ctx.val_pairs = lambda: faces
    if world == 1:
        with pytest.raises(TrainingCancelled):
            _measure_predictor(ctx, predictor)
    else:  # the other processes wait on this one's pass: it ends, and they all stop together at a step
        assert _measure_predictor(ctx, predictor)["metrics"]["images"] == len(faces)
    assert predictor.batches == batches
