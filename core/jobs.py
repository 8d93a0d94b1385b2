"""Long work in its own process: training (and any other job with a worker module), with live events and cancel.

Why a process: training takes minutes to hours, allocates gigabytes and runs native code that can crash. In its own
process it cannot freeze the GUI or the CLI, and an out-of-memory kill or a segfault ends the job, not the studio.
The project database is the meeting point: the job's row holds its state, progress, message and cancel flag, and
the job log holds its lines, so any process (the GUI, `faceparse` in a terminal) can follow or cancel any job.

Parent side (GUI, CLI):

    runner = JobRunner(project_folder)
    handle = runner.start_retrain({"task": "parser", "epochs": 10}, on_event=callback)
    for event in handle.events(): ...      # or handle.poll() from a timer; or only the callback
    handle.cancel()                         # the job stops within seconds; the active model stays
    outcome = handle.wait()                 # JobOutcome(state, message, result)

`on_event` is called from a reader thread; a Qt GUI should forward it to the GUI thread with a signal.
Only one training job runs per project at a time: `start_retrain` raises `JobConflict` while one is running
(in this process or any other). `JobRunner.start(kind, params)` runs any registered worker module the same way.

Event format (`JobEvent`, also `to_dict()`): phase, step, total, loss, metrics, eta_s, message, result, job_id,
time. Phases of a retrain: "start", "snapshot", "prepare", "pretrain", "train" (one event per step: loss, ETA),
"validate" (metrics after an epoch), "save", "promote", "repredict", then exactly one final event "done",
"failed" or "cancelled" whose `message` says what happened and whose `result` (on "done") holds the new version,
whether it was promoted and why, and its metrics.

Worker side: a worker module's entry point opens the project, creates a `JobReporter` for its job id and calls
`emit`/`log`/`cancelled()`/`finish()`. Events travel as one JSON object per line on the worker's stdout (everything
else the worker prints goes to stderr, which the parent copies into the job log). Cancel: the parent sets the job's
cancel flag; the worker polls it in a thread and its loops check `cancelled()` every step. If a step takes longer
than `CANCEL_GRACE_S` after the request, the worker records the cancel and exits at once; the parent kills a worker
that still has not exited a few seconds later. Until the version being written is complete and registered, the
active model is never touched, so any of these ends leaves the previous model active.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from faceparse.core.store import ProjectError, ProjectStore

WORKERS: dict[str, str] = {"retrain": "faceparse.core.train_worker"}
TRAINING_KINDS = frozenset({"retrain", "pretrain"})
FINAL_PHASES = ("done", "failed", "cancelled")
ACTIVE_STATES = ("queued", "running")
CANCEL_GRACE_S = 8.0
KILL_GRACE_S = 6.0
START_GRACE_S = 120.0
REMOTE_SILENCE_S = 900.0
CANCELLED_EXIT = 3
JOBS_DIR = "jobs"
TRAINING_LOCK = "training.lock"
START_LOCK = "start.lock"
STDERR_LOG_LINES = 400


class JobConflict(ProjectError):
    """A training job is already running on this project."""


@dataclass(frozen=True)
class JobEvent:
    phase: str
    step: int | None = None
    total: int | None = None
    loss: float | None = None
    metrics: dict[str, Any] | None = None
    eta_s: float | None = None
    message: str = ""
    result: dict[str, Any] | None = None
    job_id: int | None = None
    time: float = field(default_factory=time.time)

    @property
    def final(self) -> bool:
        return self.phase in FINAL_PHASES

    @property
    def fraction(self) -> float | None:
        return self.step / self.total if self.step is not None and self.total else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobEvent:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class JobOutcome:
    job_id: int
    state: str
    message: str
    result: dict[str, Any] | None = None


def register_worker(kind: str, module: str) -> None:
    """Let `JobRunner.start(kind, …)` run `python -m module --project P --job-id N` (see the worker side above)."""
    WORKERS[kind] = module


def jobs_dir(store: ProjectStore) -> Path:
    path = store.dir / JOBS_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def job_work_dir(store: ProjectStore, job_id: int) -> Path:
    return jobs_dir(store) / str(job_id)


# --- a lock the operating system releases when its process dies ---------------------------------------------------

class ProcessLock:
    """An exclusive lock on a file, held by one process at a time and freed by the OS if that process dies."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            if os.name == "nt":
                import msvcrt

                os.lseek(self._fd, 0, os.SEEK_SET)
                msvcrt.locking(self._fd, msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def is_free(self) -> bool:
        """Whether nobody holds the lock right now (takes and drops it)."""
        if self.held:
            return False
        if self.acquire():
            self.release()
            return True
        return False

    @contextlib.contextmanager
    def waiting(self, timeout_s: float = 30.0) -> Iterator[None]:
        deadline = time.monotonic() + timeout_s
        while not self.acquire():
            if time.monotonic() > deadline:
                raise ProjectError(f"{self.path} stayed locked for {timeout_s:.0f} s")
            time.sleep(0.05)
        try:
            yield
        finally:
            self.release()


def training_lock(store: ProjectStore) -> ProcessLock:
    return ProcessLock(jobs_dir(store) / TRAINING_LOCK)


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    if os.name == "nt":
        return True  # no cheap portable check; the training lock and START_GRACE_S decide instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_gone(job: dict[str, Any], now: float) -> bool:
    """Whether the job's recorded process has ended. A process id is looked up only on the machine that recorded
    it; a job another machine runs (a project on a shared disk) counts as gone once it has been silent for
    REMOTE_SILENCE_S, since running jobs report every few seconds."""
    if job["pid"] is None:
        return False
    if job.get("host") not in (None, socket.gethostname()):
        return now - job["updated"] > REMOTE_SILENCE_S
    return not _pid_alive(job["pid"])


def reap_stale_jobs(store: ProjectStore) -> list[int]:
    """Mark queued/running jobs whose process is gone as failed; returns their ids.

    A training job is stale when nobody holds the training lock and it is older than START_GRACE_S (so a worker
    that is still starting is not mistaken for a dead one), or when its recorded process no longer exists. Any
    other job (a pre-labeling run, also the one a retrain starts inside its own process) is stale when its
    recorded process no longer exists (see `_process_gone`).
    """
    stale = []
    lock_free = training_lock(store).is_free()
    now = time.time()
    for job in store.jobs():
        if job["state"] not in ACTIVE_STATES:
            continue
        gone = _process_gone(job, now)
        if job["kind"] in TRAINING_KINDS:
            young = now - job["created"] < START_GRACE_S
            if not lock_free or (young and not gone):
                continue
        elif not gone:
            continue
        message = "the job's process ended without finishing (crashed or killed)"
        if job["kind"] in TRAINING_KINDS:  # only a training job could have changed which model is active
            message += f"; {active_models_summary(store)}"
        store.update_job(job["id"], state="failed", message=message)
        store.append_job_log(job["id"], "marked failed: its process is gone")
        stale.append(job["id"])
    return stale


def active_models_summary(store: ProjectStore, before: dict[str, str] | None = None) -> str:
    """What is active now, in words; with `before` (task -> version when a job started), only what changed, or
    that the previous model is still active."""
    try:
        now = {task: model["version"] for task, model in store.active_models().items()}
    except Exception:
        return "the active model could not be read"
    if before is not None:
        changed = [f"{task} {version} is now active" for task, version in sorted(now.items())
                   if before.get(task) != version]
        return "; ".join(changed) if changed else "the previous model is still active"
    if not now:
        return "no trained version is active"
    return "active: " + ", ".join(f"{task} {version}" for task, version in sorted(now.items()))


def running_training_job(store: ProjectStore) -> dict[str, Any] | None:
    """The training job that is queued or running on this project, if any (after reaping dead ones)."""
    reap_stale_jobs(store)
    for job in store.jobs():
        if job["kind"] in TRAINING_KINDS and job["state"] in ACTIVE_STATES:
            return job
    return None


# --- parent side -----------------------------------------------------------------------------------------------------

def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " — most likely the system ran out of memory" if -code == getattr(signal, "SIGKILL", 9) else ""
        return f"killed by signal {name}{hint}"
    return f"exit code {code}"


class JobHandle:
    """A job started by this process: its events, its outcome, and the means to cancel it."""

    def __init__(self, store: ProjectStore, job_id: int, kind: str, process: subprocess.Popen,
                 on_event: Callable[[JobEvent], None] | None = None):
        self.store = store
        self.job_id = job_id
        self.kind = kind
        self.process = process
        self._on_event = on_event
        self._queue: queue.Queue[JobEvent] = queue.Queue()
        self._final: JobEvent | None = None
        self._final_seen = threading.Event()
        self._stderr_tail: deque[str] = deque(maxlen=20)
        self._cancel_at: float | None = None
        self._last_event = time.monotonic()
        self._lock = threading.Lock()
        try:
            self._active_before = {task: m["version"] for task, m in store.active_models().items()}
        except Exception:
            self._active_before = {}
        self._threads = [threading.Thread(target=self._read_events, daemon=True, name=f"job{job_id}-events"),
                         threading.Thread(target=self._read_stderr, daemon=True, name=f"job{job_id}-stderr")]
        for thread in self._threads:
            thread.start()

    # reader threads
    def _deliver(self, event: JobEvent) -> None:
        with self._lock:
            if self._final is not None:
                return
            if event.final:
                self._final = event
        self._queue.put(event)
        if self._on_event is not None:
            with contextlib.suppress(Exception):
                self._on_event(event)
        if event.final:
            self._final_seen.set()

    def _read_events(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        with stream:
            for line in stream:
                line = line.strip()
                if not line:
                    continue
                try:
                    data = json.loads(line)
                except json.JSONDecodeError:
                    self._stderr_tail.append(line)
                    continue
                if isinstance(data, dict) and "phase" in data:
                    self._deliver(JobEvent.from_dict({**data, "job_id": self.job_id}))
        code = self.process.wait()
        self._conclude(code)

    def _read_stderr(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        logged = 0
        with stream:
            for line in stream:
                line = line.rstrip()
                if not line:
                    continue
                self._stderr_tail.append(line)
                if logged < STDERR_LOG_LINES:
                    logged += 1
                    with contextlib.suppress(Exception):
                        self.store.append_job_log(self.job_id, f"stderr: {line}")

    def _conclude(self, code: int) -> None:
        """After the worker exited: make sure the job row and the listeners know how it ended."""
        if self._final is not None:
            return
        job = self.store.job(self.job_id) or {}
        state = job.get("state")
        if state in FINAL_PHASES:
            message = job.get("message", "")
        else:
            cancelled = self._cancel_at is not None
            state = "cancelled" if cancelled else "failed"
            tail = next((line for line in reversed(self._stderr_tail) if line.strip()), "")
            outcome = active_models_summary(self.store, self._active_before)
            message = (f"cancelled; {outcome}" if cancelled else
                       f"the {self.kind} process ended unexpectedly ({_describe_exit(code)})"
                       + (f": {tail}" if tail else "") + f"; {outcome}")
            with contextlib.suppress(Exception):
                self.store.update_job(self.job_id, state=state, message=message)
                self.store.append_job_log(self.job_id, message)
        self._deliver(JobEvent(state, message=message, job_id=self.job_id))

    # public
    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def poll(self) -> list[JobEvent]:
        """Events received since the last call, without waiting."""
        events = []
        while True:
            try:
                events.append(self._queue.get_nowait())
            except queue.Empty:
                return events

    def events(self, timeout: float | None = None) -> Iterator[JobEvent]:
        """Every event until the final one (or until `timeout` seconds pass without an event)."""
        while True:
            self._enforce_cancel()
            try:
                event = self._queue.get(timeout=0.5 if timeout is None else min(timeout, 0.5))
            except queue.Empty:
                if self._final_seen.is_set() and self._queue.empty():
                    return
                if timeout is not None and self._idle_since() > timeout:
                    return
                continue
            self._last_event = time.monotonic()
            yield event
            if event.final:
                return

    def _idle_since(self) -> float:
        return time.monotonic() - self._last_event

    def cancel(self) -> None:
        """Ask the job to stop; it ends within seconds, as "cancelled", leaving the previous model active."""
        if self._cancel_at is None:
            self._cancel_at = time.monotonic()
        with contextlib.suppress(Exception):
            self.store.request_cancel(self.job_id)

    def _enforce_cancel(self) -> None:
        if self._cancel_at is None or not self.running:
            return
        if time.monotonic() - self._cancel_at > CANCEL_GRACE_S + KILL_GRACE_S:
            with contextlib.suppress(OSError):
                self.process.kill()

    def wait(self, timeout: float | None = None) -> JobOutcome:
        """Block until the job has ended (raises TimeoutError after `timeout` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._final_seen.wait(0.25):
            self._enforce_cancel()
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.job_id} still running after {timeout} s")
        self.process.wait()
        assert self._final is not None
        job = self.store.job(self.job_id) or {}
        return JobOutcome(self.job_id, job.get("state", self._final.phase),
                          job.get("message", self._final.message), self._final.result)


class JobRunner:
    """Starts job worker processes for one project; see the module docstring."""

    def __init__(self, project: str | os.PathLike | ProjectStore, python: str | None = None,
                 env: dict[str, str] | None = None):
        self.store = project if isinstance(project, ProjectStore) else ProjectStore.open(project)
        self.python = python or sys.executable
        self.env = env or {}

    def start_retrain(self, config: dict[str, Any] | Any | None = None, on_event: Callable[[JobEvent], None] | None
                      = None) -> JobHandle:
        """Fine-tune on the corrected faces; `config` is a TrainConfig or a dict of its options."""
        from_obj = getattr(config, "to_dict", None)
        params = from_obj() if callable(from_obj) else dict(config or {})
        return self.start("retrain", params, on_event)

    def start(self, kind: str, params: dict[str, Any] | None = None,
              on_event: Callable[[JobEvent], None] | None = None) -> JobHandle:
        if kind not in WORKERS:
            raise ProjectError(f"no worker for job kind {kind!r}; known: {', '.join(sorted(WORKERS))}")
        with ProcessLock(jobs_dir(self.store) / START_LOCK).waiting():
            if kind in TRAINING_KINDS:
                busy = running_training_job(self.store)
                if busy is not None or not training_lock(self.store).is_free():
                    which = f" (job {busy['id']}, {busy['state']})" if busy else ""
                    raise JobConflict(f"a training job is already running on {self.store.root}{which}; "
                                      "wait for it or cancel it first")
            job_id = self.store.add_job(kind, params or {})
            command = [self.python, "-m", WORKERS[kind], "--project", str(self.store.root), "--job-id", str(job_id)]
            env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
            extra: dict[str, Any] = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt"
                                     else {"start_new_session": True})
            try:
                process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace",
                                           bufsize=1, env=env, **extra)
            except OSError as e:
                self.store.update_job(job_id, state="failed", message=f"could not start the worker: {e}")
                raise ProjectError(f"could not start the {kind} worker: {e}") from None
            self.store.update_job(job_id, pid=process.pid)
        return JobHandle(self.store, job_id, kind, process, on_event)

    def close(self) -> None:
        self.store.close()


# --- worker side -----------------------------------------------------------------------------------------------------

class JobReporter:
    """The worker's side of a job: events to the parent, lines to the job log, the job row, the cancel flag."""

    def __init__(self, store: ProjectStore, job_id: int, stream: IO[str] | None = None, echo: bool = False,
                 event_interval_s: float = 0.1, log_interval_s: float = 10.0, poll_interval_s: float = 0.4):
        self.store = store
        self.job_id = job_id
        self.stream = stream
        self.echo = echo
        self.event_interval_s = event_interval_s
        self.log_interval_s = log_interval_s
        self.poll_interval_s = poll_interval_s
        self.phase = "start"
        self.finished = False
        self.cancel_outcome = "the previous model is still active"  # what a cancel leaves behind
        self._cancel = threading.Event()
        self._protected = 0
        self._last_emit = 0.0
        self._last_log = 0.0
        self._last_row = 0.0
        self._write_lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    # cancel
    def start_watching(self) -> None:
        """Poll the job's cancel flag in the background; past the grace period, end the process."""
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, daemon=True, name="cancel-watch")
            self._watcher.start()

    def _watch(self) -> None:
        store = self.store
        while not self.finished:
            with contextlib.suppress(Exception):
                job = store.job(self.job_id)
                if job and job["cancel_requested"]:
                    self._cancel.set()
                    break
            time.sleep(self.poll_interval_s)
        deadline = time.monotonic() + CANCEL_GRACE_S
        while not self.finished:
            if time.monotonic() > deadline and not self._protected:
                self.finish("cancelled", self.cancel_message())
                os._exit(CANCELLED_EXIT)
            time.sleep(0.1)

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel_message(self) -> str:
        return f"cancelled during {self.phase}; {self.cancel_outcome}"

    def request_cancel(self) -> None:
        self._cancel.set()

    @contextlib.contextmanager
    def protected(self) -> Iterator[None]:
        """A stretch (writing a version) that a late cancel must not cut short."""
        self._protected += 1
        try:
            yield
        finally:
            self._protected -= 1

    # events and log
    def _write(self, event: dict[str, Any]) -> None:
        if self.stream is None:
            return
        line = json.dumps(event, default=_json_default, allow_nan=False)
        with self._write_lock, contextlib.suppress(OSError, ValueError):
            self.stream.write(line + "\n")
            self.stream.flush()

    def log(self, line: str) -> None:
        with contextlib.suppress(Exception):
            self.store.append_job_log(self.job_id, line)
        if self.echo:
            print(line, file=sys.stderr, flush=True)

    def emit(self, event: dict[str, Any]) -> None:
        """Send one event; step events are thinned to `event_interval_s` on the wire and to the log interval."""
        event = _finite({**event, "time": time.time()})
        phase = event.get("phase", self.phase)
        now = time.monotonic()
        is_step = phase == self.phase and event.get("step") is not None and not event.get("metrics") \
            and not event.get("result") and phase not in FINAL_PHASES
        self.phase = phase
        if not is_step or now - self._last_emit >= self.event_interval_s:
            self._last_emit = now
            self._write(event)
        if not is_step or now - self._last_log >= self.log_interval_s:
            self._last_log = now
            self.log(_log_line(event))
        if now - self._last_row >= 1.0 or not is_step:
            self._last_row = now
            total, step = event.get("total"), event.get("step")
            with contextlib.suppress(Exception):
                self.store.update_job(self.job_id, progress=(step / total) if step is not None and total else None,
                                      message=event.get("message") or phase)

    def start(self) -> None:
        self.store.update_job(self.job_id, state="running", pid=os.getpid(), message="starting")
        self.emit({"phase": "start", "message": f"job {self.job_id} started (process {os.getpid()})"})

    def finish(self, state: str, message: str, result: dict[str, Any] | None = None) -> None:
        """Record the end of the job once: the job row, a last log line, the final event."""
        with self._write_lock:
            if self.finished:
                return
            self.finished = True
        with contextlib.suppress(Exception):
            self.store.update_job(self.job_id, state=state, message=message,
                                  progress=1.0 if state == "done" else None)
        self.log(f"{state}: {message}")
        if result is not None:
            self.log("result " + json.dumps(_finite(result), default=_json_default))
        self._write(_finite({"phase": state, "message": message, "result": result, "time": time.time()}))

    def fail_with_exception(self, error: BaseException, doing: str) -> None:
        self.log("".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip())
        self.finish("failed", describe_error(error, doing))


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError):
        return True
    text = str(error).lower()
    return type(error).__name__ == "OutOfMemoryError" or "out of memory" in text or "can't allocate memory" in text \
        or "not enough memory" in text


def describe_error(error: BaseException, doing: str) -> str:
    if is_out_of_memory(error):
        return (f"out of memory while {doing}; try a smaller batch or input size (--batch, --size) "
                "or close other programs; the previous model is still active")
    text = str(error).strip() or type(error).__name__
    return f"{doing} failed: {type(error).__name__}: {text}; the previous model is still active"


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _finite(value: Any) -> Any:
    """NaN and infinities as null, so every event is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        return _finite(value.item())
    return value


def _log_line(event: dict[str, Any]) -> str:
    parts = [event.get("phase", "?")]
    if event.get("step") is not None and event.get("total"):
        parts.append(f"{event['step']}/{event['total']}")
    if event.get("loss") is not None:
        parts.append(f"loss {event['loss']:.4f}")
    if event.get("eta_s") is not None:
        parts.append(f"eta {event['eta_s']:.0f}s")
    if event.get("message"):
        parts.append(str(event["message"]))
    return " ".join(parts)
