"""Model versions of a project: every finished training becomes a version; one version per task is active.

On disk a version is `.faceparse/models/<task>/<version>/` holding `model.safetensors` + `meta.json` (the
checkpoint) and `model.onnx` (what pre-labeling runs). The files are written into a hidden temporary directory
that is renamed into place, and only then is the version row added to the database; a crash at any point leaves
either no version or a complete one, and the active model is untouched until `activate` is called.

Deleting a version is crash-safe the same way: its folder is renamed to a hidden name, then its row is removed,
then the folder; a crash before the row goes leaves a hidden folder that the next listing or deletion renames back,
a crash after leaves one that the next listing or deletion removes. The active version is never deleted, and a deleted version's name
is never given to a new one.

Promotion is honest: a new version becomes active only if it scores better than the active model on the same
validation images (both measured by the same job on the same snapshot), or if the user forces it. Without an active
model, a new version is promoted if its score is a number at all. Rollback re-activates any earlier version; the
order of activations is kept so "rollback" without a version returns to the previously active one, and at the end
of that line to the starter model shipped with the application.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceparse.core.checkpoint_layout import has_checkpoint
from faceparse.core.store import ProjectError, ProjectStore

if TYPE_CHECKING:  # the version list is read by the studio, which should not have to load PyTorch
    from torch import nn

ONNX_NAME = "model.onnx"
HISTORY_KEY = "model_history.{task}"
HISTORY_LENGTH = 50
KEEP_VERSIONS = 3
DELETING_MARK = ".deleting-"


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str


FEW_VALIDATION_FACES = 5
"""Below this many validation faces a "not promoted" says how little they decide, and what to do instead."""


def decide_promotion(new_score: float, baseline_score: float | None, mode: str = "auto",
                     min_improvement: float = 0.0, baseline_name: str = "the active model",
                     faces: int | None = None) -> PromotionDecision:
    """Whether a new model replaces the one in use (`baseline_name`); `baseline_score` None means there is none
    that could be measured, NaN that it was measured but its score is undefined there (an IoU of a class that
    neither the validation masks nor the model hold), where any finite score of the new model is a worse one. `faces`: how many validation faces both were measured on, for the message."""
    new_ok = new_score is not None and math.isfinite(new_score)
    shown = f"{new_score:.4f}" if new_ok else "not measurable"
    if mode == "force":
        return PromotionDecision(True, f"promoted on request (score {shown})")
    if mode == "never":
        return PromotionDecision(False, f"kept inactive on request (score {shown})")
    if not new_ok:
        return PromotionDecision(False, "not promoted: the validation score could not be measured "
                                        "(no validation faces yet, or none that shows what it counts)")
    if baseline_score is None:
        return PromotionDecision(True, f"promoted: first measured model (score {new_score:.4f})")
    if not math.isfinite(baseline_score):
        return PromotionDecision(False, f"not promoted: {baseline_name} has no measurable score on these validation "
                                        f"faces (they show none of what the score counts, such as a face mask, and "
                                        f"it predicts none), so {new_score:.4f} cannot be compared with it; correct "
                                        "faces that show it, or activate the new model yourself")
    if new_score > baseline_score + min_improvement:
        return PromotionDecision(True, f"promoted: {new_score:.4f} beats {baseline_name}'s {baseline_score:.4f}")
    measured = "" if faces is None else f" on {faces} validation face{'' if faces == 1 else 's'}"
    advice = ("; so few faces decide little: correct more, or activate it yourself if its masks look better"
              if faces is not None and faces < FEW_VALIDATION_FACES else "")
    return PromotionDecision(False, f"not promoted: {new_score:.4f} does not beat {baseline_name}'s "
                                    f"{baseline_score:.4f}{measured}{advice}")


def version_dir(store: ProjectStore, task: str, version: str) -> Path:
    return store.models_dir / task / version


def _fsync_dir(directory: Path) -> None:
    if os.name == "posix":
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def create_version(store: ProjectStore, task: str, model: nn.Module, meta: dict[str, Any], metrics: dict[str, Any],
                   parent: str | None = None, data_summary: dict[str, Any] | None = None,
                   export_onnx: bool = True) -> dict[str, Any]:
    """Write a new version (checkpoint, ONNX export) and register it; it is not activated. Returns its row."""
    version = store.next_version_name(task)
    final = version_dir(store, task, version)
    final.parent.mkdir(parents=True, exist_ok=True)
    for leftover in final.parent.glob(".*.partial-*"):  # from a killed job; only one training job runs at a time
        shutil.rmtree(leftover, ignore_errors=True)
    staging = final.parent / f".{version}.partial-{os.getpid()}"
    full_meta = {**meta, "version": version, "parent": parent, "metrics": metrics}
    try:
        from faceparse.core.checkpoint import save_checkpoint

        save_checkpoint(staging, model, full_meta)
        if export_onnx:
            from faceparse.core.onnx_export import export_onnx as export

            export(model, full_meta, staging / ONNX_NAME)
        if final.exists() and not has_checkpoint(final):  # left by a crash after the rename, before the row
            shutil.rmtree(final)
        elif final.exists():  # a model no row names, whose number another process took meanwhile: keep it
            final.rename(final.with_name(f".{version}.unregistered-{os.getpid()}"))
        os.replace(staging, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return store.add_model_version(task, version, final, metrics, parent, data_summary)


def _readable_onnx(path: Path) -> bool:
    from faceparse.core.predictor import ModelError, read_model_info

    try:
        read_model_info(path)
    except ModelError:
        return False
    return True


def ensure_onnx(store: ProjectStore, task: str, version: str, announce: Callable[[str], None] | None = None
                ) -> Path:
    """The version's ONNX file, exported now from its checkpoint if it was saved without one or the file is
    damaged (truncated by a full disk, say): a version is only made active with a model that pre-labels. The
    export takes a while on a CPU, so `announce` is told before it starts."""
    row = _require(store, task, version)
    directory = Path(row["path"])
    onnx_path = directory / ONNX_NAME
    if not onnx_path.is_file() or not _readable_onnx(onnx_path):
        from faceparse.core.checkpoint import CheckpointError, load_checkpoint
        from faceparse.core.onnx_export import export_onnx

        if announce is not None:
            announce(f"{task} {version} has no usable ONNX file; exporting it from its checkpoint first (this can "
                     "take a minute)")

        try:
            model, meta = load_checkpoint(directory)
        except CheckpointError as e:
            raise ProjectError(f"model version {task}/{version} cannot be used: {e}") from None
        try:
            export_onnx(model, meta, onnx_path)
        except OSError as e:
            raise ProjectError(f"model version {task}/{version} has no ONNX file yet and it cannot be written to "
                               f"{onnx_path}: {e.strerror or e}") from None
    return onnx_path


def _require(store: ProjectStore, task: str, version: str) -> dict[str, Any]:
    row = store.model_version(task, version)
    if row is None:
        known = ", ".join(m["version"] for m in store.model_versions(task)) or "none"
        raise ProjectError(f"no model version {version!r} for task {task!r} (known: {known})")
    if not has_checkpoint(row["path"]):
        raise ProjectError(f"model version {task}/{version} has no checkpoint at {row['path']}; it cannot be used")
    return row


def activation_history(store: ProjectStore, task: str) -> list[str]:
    return list(store.get_setting(HISTORY_KEY.format(task=task), []) or [])


STARTER = "starter"
"""The name that stands for the model shipped with the application, in `activate`, `rollback` and the candidates:
no project version is active, so pre-labeling uses the starter model again."""


def _starter_available(task: str) -> bool:
    from faceparse.core.model_resolver import starter_model_path

    return starter_model_path(task).is_file()


def use_starter(store: ProjectStore, task: str) -> dict[str, Any]:
    """Go back to the shipped starter model: no version of `task` stays active (its versions are all kept)."""
    from faceparse.core.model_resolver import starter_model_path

    if not _starter_available(task):
        raise ProjectError(f"there is no starter {task} model to go back to")
    active = store.active_model(task)
    store.set_active_model(task, None)
    if active is not None:
        store.set_setting(HISTORY_KEY.format(task=task),
                          [v for v in activation_history(store, task) if v != active["version"]])
    return {"task": task, "version": STARTER, "path": str(starter_model_path(task))}


def activate(store: ProjectStore, task: str, version: str, export_missing_onnx: bool = True,
             announce: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Make `version` the active model of `task` (its files must exist) and remember the order of activations;
    `STARTER` goes back to the shipped starter model.

    Pre-labeling runs the ONNX export, so a version saved without one is exported first (unless told not to).
    """
    if version == STARTER:
        return use_starter(store, task)
    row = _require(store, task, version)
    if export_missing_onnx:
        ensure_onnx(store, task, version, announce)
    history = activation_history(store, task)
    if store.active_model(task) is None and _starter_available(task):  # moving off the starter: remember it
        history = [v for v in history if v != STARTER] + [STARTER]
    store.set_active_model(task, version)
    history = [v for v in history if v != version] + [version]
    store.set_setting(HISTORY_KEY.format(task=task), history[-HISTORY_LENGTH:])
    return row


def rollback(store: ProjectStore, task: str, version: str | None = None,
             export_missing_onnx: bool = True, announce: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Activate `version`, or without one the model that was active before the current one (else its parent,
    else the shipped starter model). A version that cannot be activated is passed over for the next one, but not
    silently for the starter model: then the reasons are the error."""
    if version is not None:
        return activate(store, task, version, export_missing_onnx, announce)
    active = store.active_model(task)
    if active is None:
        raise ProjectError(f"no active {task} model to roll back from")
    failures: list[str] = []
    for candidate in rollback_candidates(store, task):
        if candidate == STARTER and failures:
            raise ProjectError(f"no earlier {task} version could be activated ({'; '.join(failures)}); activate "
                               f"'{STARTER}' to go back to the starter model")
        if candidate == STARTER:
            return use_starter(store, task)
        try:
            row = activate(store, task, candidate, export_missing_onnx, announce)
        except ProjectError as error:
            failures.append(str(error))
            continue
        store.set_setting(HISTORY_KEY.format(task=task), [v for v in activation_history(store, task)
                                                            if v != active["version"]])
        return row
    reasons = f" ({'; '.join(failures)})" if failures else ""
    raise ProjectError(f"{task} model {active['version']} has no earlier version to roll back to{reasons}")


def rollback_candidates(store: ProjectStore, task: str) -> list[str]:
    """The versions a rollback would try, in order: those active before the current one, newest first (the starter
    model among them, where it was in use before), then its parent, then `STARTER` when the application ships a
    starter model; only those whose files are there, so it is empty when there is nothing to roll back to."""
    active = store.active_model(task)
    if active is None:
        return []
    history = [v for v in activation_history(store, task) if v != active["version"]]
    candidates = list(reversed(history)) + ([active["parent"]] if active["parent"] else []) + [STARTER]
    usable = []
    for version in dict.fromkeys(candidates):
        if version == STARTER:
            if _starter_available(task):
                usable.append(version)
            continue
        with contextlib.suppress(ProjectError):
            _require(store, task, version)
            usable.append(version)
    return usable


def list_versions(store: ProjectStore, task: str | None = None) -> list[dict[str, Any]]:
    """Every version, oldest first, with an `active` flag. A deletion a crash interrupted is settled first, so a
    version whose folder it had hidden is listed whole again, not as one whose files are missing."""
    for name in [task] if task else _tasks_on_disk(store):
        _settle_interrupted_deletions(store, name)
    active = {t: m["version"] for t, m in store.active_models().items()}
    return [{**row, "active": active.get(row["task"]) == row["version"]} for row in store.model_versions(task)]


def resolve_version(store: ProjectStore, task: str, spec: str) -> dict[str, Any]:
    """A version row from "v0003", "parser/v0003", "active" or "starter". While no version is active the
    project uses the starter model, so "active" then means the starter: a row with `version` STARTER and the
    path of the shipped checkpoint folder."""
    if "/" in spec:
        task, spec = spec.split("/", 1)
    if spec not in ("active", STARTER):
        return _require(store, task, spec)
    row = store.active_model(task) if spec == "active" else None
    if row is not None:
        return row
    starter = starter_checkpoint(task)
    if starter is None:
        raise ProjectError(f"the project has no active {task} model and there is no starter {task} model")
    return {"task": task, "version": STARTER, "path": str(starter)}


def starter_checkpoint(task: str) -> Path | None:
    """The model shipped with the application for `task` (resources/models/<task>/), if there is one."""
    try:
        root = Path(str(resources.files("faceparse.resources"))) / "models" / task
    except (ModuleNotFoundError, TypeError):
        return None
    return root if has_checkpoint(root) else None


@dataclass(frozen=True)
class DeletedVersion:
    task: str
    version: str
    size_bytes: int
    files_kept: str | None = None
    """The version's folder when it lies outside the project's model folder: such files are left alone."""


@dataclass(frozen=True)
class PruneResult:
    task: str
    deleted: tuple[DeletedVersion, ...]
    refused: tuple[tuple[str, str], ...] = ()
    """(version, reason) for each version that was to go but could not."""
    dry_run: bool = False

    @property
    def bytes_freed(self) -> int:
        return sum(d.size_bytes for d in self.deleted)


def delete_version(store: ProjectStore, task: str, version: str) -> DeletedVersion:
    """Delete one version for good: its folder and its row. Refused for the active version (activate another
    first), for one that does not exist, and for the one a running training job starts from (named when it was
    started, or the active version it settled on; see `train_worker.settle_start`)."""
    row = _deletable(store, task, version)
    _settle_interrupted_deletions(store, task)
    deleted = _described(store, row)
    folder = _own_folder(store, row)
    hidden = _hide(folder) if folder is not None and folder.exists() else None
    try:
        store.delete_model_version(task, version)
    except BaseException:
        if hidden is not None:
            with contextlib.suppress(OSError):  # else the next deletion puts it back
                os.replace(hidden, folder)
        raise
    _forget_in_history(store, task, version)
    if hidden is not None:
        shutil.rmtree(hidden, ignore_errors=True)
    return deleted


def versions_to_prune(store: ProjectStore, task: str, keep: int = KEEP_VERSIONS) -> list[dict[str, Any]]:
    """Every version of `task` but the active one and the `keep` newest others, oldest first."""
    if keep < 0:
        raise ProjectError(f"the number of versions to keep cannot be negative, got {keep}")
    active = store.active_model(task)
    others = [row for row in store.model_versions(task)
              if active is None or row["version"] != active["version"]]
    return others[:max(0, len(others) - keep)]


def prune_versions(store: ProjectStore, task: str, keep: int = KEEP_VERSIONS, dry_run: bool = False) -> PruneResult:
    """Delete the versions `versions_to_prune` names (with `dry_run`, only say which and how big they are); one
    that cannot be deleted is reported in `refused` and the others still go. A dry run refuses what the real run
    would refuse before deleting anything (the version a running training job starts from)."""
    doomed = versions_to_prune(store, task, keep)
    if dry_run:
        described, refused_now = [], []
        for row in doomed:
            try:
                _deletable(store, task, row["version"])
            except ProjectError as error:
                refused_now.append((row["version"], str(error)))
                continue
            described.append(_described(store, row))
        return PruneResult(task, tuple(described), tuple(refused_now), dry_run=True)
    deleted, refused = [], []
    for row in doomed:
        try:
            deleted.append(delete_version(store, task, row["version"]))
        except (ProjectError, OSError) as error:
            refused.append((row["version"], str(error)))
    return PruneResult(task, tuple(deleted), tuple(refused))


def _deletable(store: ProjectStore, task: str, version: str) -> dict[str, Any]:
    if version == STARTER:
        raise ProjectError(f"the {STARTER} model ships with the application and cannot be deleted")
    row = store.model_version(task, version)
    if row is None:
        known = ", ".join(m["version"] for m in store.model_versions(task)) or "none"
        raise ProjectError(f"no model version {version!r} for task {task!r} (known: {known})")
    active = store.active_model(task)
    if active is not None and active["version"] == version:
        raise ProjectError(f"{task} {version} is the active model and cannot be deleted; activate another version "
                           f"(or '{STARTER}') first")
    job = _training_job_starting_from(store, task, version)
    if job is not None:
        raise ProjectError(f"{task} {version} is what training job {job['id']} starts from; delete it once the job "
                           "has ended")
    return row


def _training_job_starting_from(store: ProjectStore, task: str, version: str) -> dict[str, Any] | None:
    from faceparse.core.jobs import running_training_job

    job = running_training_job(store)
    if job is None or job["params"].get("task", task) != task:
        return None
    params = job["params"]
    starts = {str(params.get("init") or ""), str(params.get("start_version") or "")}
    return job if starts & {version, f"{task}/{version}"} else None


def _described(store: ProjectStore, row: dict[str, Any]) -> DeletedVersion:
    folder = _own_folder(store, row)
    if folder is None:
        return DeletedVersion(row["task"], row["version"], 0, row["path"])
    return DeletedVersion(row["task"], row["version"], _folder_size(folder))


def _own_folder(store: ProjectStore, row: dict[str, Any]) -> Path | None:
    """The version's folder if it is the one the project keeps it in; files elsewhere are not the project's to
    delete."""
    own = version_dir(store, row["task"], row["version"])
    if not row["path"] or Path(row["path"]).resolve() != own.resolve():
        return None
    return own


def _hide(folder: Path) -> Path:
    hidden = folder.with_name(f".{folder.name}{DELETING_MARK}{os.getpid()}")
    os.replace(folder, hidden)
    _fsync_dir(folder.parent)
    return hidden


def _settle_interrupted_deletions(store: ProjectStore, task: str) -> None:
    """Hidden folders left by a deletion that did not finish: removed when the row is gone (the deletion was
    committed), renamed back when it is still there and the process that hid it has ended."""
    for hidden in (store.models_dir / task).glob(f".*{DELETING_MARK}*"):
        version, _, pid = hidden.name[1:].rpartition(DELETING_MARK)
        if store.model_version(task, version) is None:
            shutil.rmtree(hidden, ignore_errors=True)
        elif not version_dir(store, task, version).exists() and not _process_alive(pid):
            with contextlib.suppress(OSError):
                os.replace(hidden, version_dir(store, task, version))


def _tasks_on_disk(store: ProjectStore) -> list[str]:
    root = store.models_dir
    return sorted(d.name for d in root.iterdir() if d.is_dir()) if root.is_dir() else []


def _process_alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    if os.name != "posix":
        return True  # no cheap check: the folder stays hidden until the version is deleted again
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_in_history(store: ProjectStore, task: str, version: str) -> None:
    history = activation_history(store, task)
    if version in history:
        store.set_setting(HISTORY_KEY.format(task=task), [v for v in history if v != version])


def _folder_size(folder: Path) -> int:
    total = 0
    for directory, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total
