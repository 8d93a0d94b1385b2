"""The training loop every training job uses: fine-tuning the parser and the mask segmenter, and the masked
pre-training phase that plugs into the retrain job.

    result = fit(model, loss_fn, train_batches, val_fn, FitConfig(...), on_event=print, cancelled=lambda: False)

- `train_batches(epoch)` yields (images, targets) as arrays or tensors; `loss_fn(model_output, targets)` is any
  loss (a model may return one tensor or a list of side outputs — the loss decides what to do with them).
- `val_fn(model) -> (score, metrics)` runs in eval mode after every `val_every` epochs; higher scores are better.
  The best-scoring weights are restored at the end (early stopping keeps the best, not the last). A NaN score
  means "nothing to measure" and never counts as an improvement.
- `on_event(event)` receives small dicts {"phase", "step", "total", "loss", "metrics", "eta_s", "message"}.
- `cancelled()` is polled before every step; when it returns True, `TrainingCancelled` is raised and the model is
  left as it was after the last finished step (the caller discards it).

Why a time limit reshapes the schedule: on a CPU the number of steps that fit in the user's patience is only known
after a few steps. Once the first epoch is measured, the cosine schedule is recomputed for the steps that fit, so
the learning rate still anneals before the limit instead of stopping at its peak.

Distributed: under `torchrun`, pass a DistributedDataParallel model and each process's share of the batches.
The decisions (cancel, time limit, validation score) are taken by rank 0 and shared with the others, so all
processes stop at the same step; only rank 0 validates, emits events and keeps the best weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

OPTIMIZERS = ("adamw", "adam", "sgd")


class TrainingCancelled(Exception):
    """The user asked the job to stop; nothing it produced should be kept."""


class TrainingDiverged(RuntimeError):
    """The loss stopped being a number; the message says at which step and what to try."""


@dataclass
class FitConfig:
    epochs: int
    steps_per_epoch: int
    lr: float
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    warmup_steps: int | None = None  # None: a tenth of the steps, at most 200
    min_lr_ratio: float = 0.01
    patience: int = 0  # validations without improvement before stopping; 0: never stop early
    min_delta: float = 0.0
    val_every: int = 1
    max_steps: int | None = None
    time_limit_s: float | None = None
    grad_clip: float | None = 10.0
    channels_last: bool = False
    phase: str = "train"

    @property
    def planned_steps(self) -> int:
        steps = self.epochs * self.steps_per_epoch
        return min(steps, self.max_steps) if self.max_steps else steps


@dataclass
class FitResult:
    stop_reason: str  # "completed", "early_stopping", "time_limit" or "max_steps"
    epochs: int
    steps: int
    best_epoch: int | None
    best_score: float
    best_metrics: dict[str, Any] | None
    last_loss: float
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"stop_reason": self.stop_reason, "epochs": self.epochs, "steps": self.steps,
                "best_epoch": self.best_epoch, "best_score": _json_float(self.best_score),
                "last_loss": _json_float(self.last_loss), "seconds": round(self.seconds, 2),
                "history": self.history}


def _json_float(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def progress_event(phase: str, step: int | None = None, total: int | None = None, loss: float | None = None,
                   metrics: dict | None = None, eta_s: float | None = None, message: str = "") -> dict[str, Any]:
    return {"phase": phase, "step": step, "total": total, "loss": loss, "metrics": metrics, "eta_s": eta_s,
            "message": message}


class Distributed:
    """What `fit` needs from the process group; without one it is a single process (rank 0 of 1)."""

    def __init__(self, device: torch.device | str = "cpu"):
        import torch.distributed as dist

        self._dist = dist
        self.active = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.active else 0
        self.world = dist.get_world_size() if self.active else 1
        self.device = torch.device(device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, *values: float) -> list[float]:
        """Rank 0's values, on every rank."""
        if not self.active:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        self._dist.broadcast(tensor, src=0)
        return tensor.tolist()

    def mean(self, value: float) -> float:
        if not self.active:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        self._dist.all_reduce(tensor)
        return float(tensor.item()) / self.world

    def everywhere(self, flag: bool) -> bool:
        """Whether `flag` holds on every process: one process's bad step stops them all at the same step, where
        it alone stopping would leave the others waiting for it in the gradient exchange."""
        if not self.active:
            return flag
        tensor = torch.tensor([float(flag)], dtype=torch.float64, device=self.device)
        self._dist.all_reduce(tensor, op=self._dist.ReduceOp.MIN)
        return bool(tensor.item())

    def barrier(self) -> None:
        if self.active:
            self._dist.barrier()


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


class CosineSchedule:
    """Linear warm-up, then cosine decay to `min_ratio`·lr at `total` steps; `total` may be shortened later."""

    def __init__(self, lr: float, total: int, warmup: int | None = None, min_ratio: float = 0.01):
        self.lr = lr
        self.total = max(1, total)
        self.fixed_warmup = warmup
        self.min_ratio = min_ratio

    @property
    def warmup(self) -> int:
        """A tenth of the steps (at most 200) unless fixed, so a shortened schedule also warms up faster."""
        return min(200, self.total // 10) if self.fixed_warmup is None else self.fixed_warmup

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        t = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.lr * (self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def make_optimizer(params: Iterable[nn.Parameter], config: FitConfig) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {config.optimizer!r}")


def _as_tensor(value: Any, device: torch.device) -> torch.Tensor:
    tensor = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))
    return tensor.to(device, non_blocking=True)


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@dataclass
class _Best:
    """The best validation so far, the weights that scored it (kept by rank 0 only) and the validations since,
    which early stopping counts."""

    score: float = -math.inf
    epoch: int | None = None
    metrics: dict[str, Any] | None = None
    state: dict[str, torch.Tensor] | None = None
    since: int = 0

    def offer(self, score: float, epoch: int, metrics: dict[str, Any] | None, net: nn.Module, min_delta: float,
              dist: Distributed) -> None:
        """Keep a score that beats the best by more than `min_delta`, else count one more validation without
        improvement. A NaN is a validation with nothing to count in which the model found nothing either (the
        faces wear no mask and it paints none): nothing scores higher, as in `decide_promotion`."""
        if _rank(score) > _rank(self.score) + min_delta:
            self.score, self.epoch, self.metrics, self.since = score, epoch, metrics, 0
            if dist.is_main:
                self.state = _cpu_state(net)
        else:
            self.since += 1


def _rank(score: float) -> float:
    return math.inf if math.isnan(score) else score


def _stop_requests(cancelled: Callable[[], bool] | None, config: FitConfig, started: float,
                   dist: Distributed) -> list[float]:
    """Rank 0's "cancel?" and "out of time?" before a step, shared so that all processes stop at the same step."""
    flags = [float(bool(cancelled and dist.is_main and cancelled())),
             float(config.time_limit_s is not None and time.perf_counter() - started > config.time_limit_s)]
    return dist.share(*flags)


def _batch_tensors(images: Any, targets: Any, device: torch.device,
                   channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch as the model takes it: on its device, float images, in channels-last layout when asked for."""
    x = _as_tensor(images, device).float()
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, _as_tensor(targets, device)


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The schedule, not the optimizer, decides each step's learning rate."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def _train_step(model: nn.Module, loss_fn: Callable[[Any, torch.Tensor], torch.Tensor],
                optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, step: int,
                config: FitConfig, dist: Distributed | None = None) -> torch.Tensor:
    """One weight update; a loss that is no longer a number, on any process, stops the job before it reaches the
    weights."""
    loss = loss_fn(model(x), y)
    finite = bool(torch.isfinite(loss))
    if not (finite if dist is None else dist.everywhere(finite)):
        where = f"{loss.item()}" if not finite else "not a number on another process"
        raise TrainingDiverged(f"the loss became {where} at step {step + 1}; "
                               f"try a lower learning rate than {config.lr:g}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return loss


def _schedule_end_reason(step: int, config: FitConfig, total: int, planned: int) -> str:
    """Why the schedule ran out: it reached max_steps, the time limit had shortened it, or it ran as planned."""
    return "max_steps" if config.max_steps and step >= config.max_steps else (
        "time_limit" if total < planned else "completed")


def _validation_score(net: nn.Module, val_fn: Callable[[nn.Module], tuple[float, dict[str, Any]]],
                      dist: Distributed) -> tuple[float, dict[str, Any] | None]:
    """Only rank 0 validates (in eval mode, without gradients); its score is shared so that every process takes
    the same early-stopping decision."""
    score, metrics = (math.nan, None)
    if dist.is_main:
        net.eval()
        with torch.no_grad():
            score, metrics = val_fn(net)
        net.train()
    (score,) = dist.share(float(score))
    return score, metrics


def fit(model: nn.Module, loss_fn: Callable[[Any, torch.Tensor], torch.Tensor],
        train_batches: Callable[[int], Iterable[tuple[Any, Any]]],
        val_fn: Callable[[nn.Module], tuple[float, dict[str, Any]]] | None, config: FitConfig,
        on_event: Callable[[dict[str, Any]], None] | None = None, cancelled: Callable[[], bool] | None = None,
        dist: Distributed | None = None) -> FitResult:
    """Train `model` in place; see the module docstring. Returns what happened and the best validation score."""
    net = unwrap(model)
    device = next(net.parameters()).device
    dist = dist or Distributed(device)
    emit = on_event if (on_event is not None and dist.is_main) else (lambda event: None)
    optimizer = make_optimizer(model.parameters(), config)
    schedule = CosineSchedule(config.lr, config.planned_steps, config.warmup_steps, config.min_lr_ratio)
    planned = schedule.total
    started = time.perf_counter()
    train_seconds = val_seconds = 0.0
    validations = 0
    step = 0
    best = _Best()
    history: list[dict[str, Any]] = []
    recent: list[float] = []
    last_loss = math.nan
    stop_reason = "completed"
    epoch = 0

    def eta() -> float:
        per_step = train_seconds / max(step, 1)
        left_vals = 0 if val_fn is None else max(0, math.ceil((schedule.total - step) / max(config.steps_per_epoch,
                                                                                          1) / config.val_every))
        per_val = val_seconds / validations if validations else 0.0
        return max(0.0, (schedule.total - step) * per_step + left_vals * per_val)

    emit(progress_event(config.phase, 0, schedule.total, message=f"{config.phase}: {schedule.total} steps planned"))
    while epoch < config.epochs and stop_reason == "completed":
        model.train()
        epoch_losses: list[float] = []
        tick = time.perf_counter()
        for images, targets in train_batches(epoch):
            cancel_now, out_of_time = _stop_requests(cancelled, config, started, dist)
            if cancel_now:
                raise TrainingCancelled(f"cancelled at step {step} of {schedule.total}")
            if out_of_time:
                stop_reason = "time_limit"
                break
            x, y = _batch_tensors(images, targets, device, config.channels_last)
            _set_lr(optimizer, schedule(step))
            loss = _train_step(model, loss_fn, optimizer, x, y, step, config, dist)
            step += 1
            value = dist.mean(float(loss.item()))
            epoch_losses.append(value)
            recent = (recent + [value])[-20:]
            last_loss = float(np.mean(recent))
            train_seconds += time.perf_counter() - tick  # the whole step, making its batch included
            tick = time.perf_counter()
            emit(progress_event(config.phase, step, schedule.total, last_loss, eta_s=eta(),
                                message=f"epoch {epoch + 1}/{config.epochs}"))
            if step >= schedule.total:
                stop_reason = _schedule_end_reason(step, config, schedule.total, planned)
                break
        if not epoch_losses and stop_reason != "completed":
            break  # stopped before this epoch's first step: it was not trained, so it is not counted
        epoch += 1
        record: dict[str, Any] = {"epoch": epoch, "step": step,
                                  "loss": float(np.mean(epoch_losses)) if epoch_losses else None,
                                  "seconds": round(time.perf_counter() - started, 2)}
        last_epoch = epoch >= config.epochs or stop_reason != "completed"
        if val_fn is not None and epoch_losses and (epoch % config.val_every == 0 or last_epoch):
            t0 = time.perf_counter()
            score, metrics = _validation_score(net, val_fn, dist)
            val_seconds += time.perf_counter() - t0
            validations += 1
            record["score"] = _json_float(score)
            best.offer(score, epoch, metrics, net, config.min_delta, dist)
            emit(progress_event("validate", step, schedule.total, last_loss, metrics, eta(),
                                f"epoch {epoch}: score {score:.4f} (best {best.score:.4f} at epoch {best.epoch})"))
            if config.patience and best.since >= config.patience and stop_reason == "completed":
                stop_reason = "early_stopping"
        history.append(record)
        if epoch == 1 and config.time_limit_s is not None and stop_reason == "completed":
            schedule.total = _steps_within_limit(schedule.total, step, time.perf_counter() - started,
                                                 config.time_limit_s, dist)
    if best.state is not None:
        net.load_state_dict(best.state)
    return FitResult(stop_reason, epoch, step, best.epoch, best.score if best.epoch else math.nan, best.metrics,
                     last_loss, time.perf_counter() - started, history)


def _steps_within_limit(total: int, done: int, elapsed: float, limit: float, dist: Distributed) -> int:
    """The step count that fits in the time limit at the speed measured so far (rank 0 decides); a limit or a
    speed that is not a finite number leaves the schedule as it is."""
    per_step = elapsed / max(done, 1)
    fits = total
    if math.isfinite(limit) and per_step > 0:
        fits = done + int(max(0.0, limit - elapsed) / per_step * 0.95)
    (shared,) = dist.share(float(min(total, max(fits, done + 1))))
    return int(shared)
