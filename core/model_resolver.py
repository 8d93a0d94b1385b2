"""Which model file a pre-label or predict run uses, and the id its predictions are recorded under.

The order is: a path the user gave; else a model version of the project (by name, or the active one for the
task); else the starter model shipped with the application. The id decides whether an image's stored prediction
is current: a project version is known by its version name, any other file by its stem and a hash of its bytes,
so replacing a file with other weights under the same name still counts as a new model.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from faceparse.core.schemas import LabelSchema
from faceparse.core.store import ProjectStore

TASKS = ("parser", "mask")
ONNX_NAME = "model.onnx"


class ModelNotFoundError(LookupError):
    """No model matches what was asked for; the message says what was tried and what to do."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    model_id: str
    source: str  # "file", "project" or "starter"


def task_for_schema(schema: LabelSchema) -> str:
    """The model task a project's label schema calls for: the binary face-mask segmenter or the face parser."""
    return "mask" if tuple(schema.classes) == ("background", "face_mask") else "parser"


def models_command(store: ProjectStore | None, task: str, *words: str) -> str:
    """The `faceparse models` command line that does `words` to the versions of `task`; `--task` is named when the
    task is not the one the project's schema pre-labels with (the command's default)."""
    folder = shlex.quote(str(store.root)) if store is not None else "FOLDER"
    other = store is not None and task != task_for_schema(store.schema)
    return " ".join(["faceparse models", folder, *words, *(["--task", task] if other else [])])


def starter_model_path(task: str) -> Path:
    return Path(str(resources.files("faceparse.resources").joinpath("models", f"{task}.onnx")))


def file_model_id(path: str | os.PathLike) -> str:
    """`<stem>-<8 hex digits of the file's hash>`: stable for the same bytes, new for new weights."""
    digest = hashlib.blake2b(digest_size=4)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return f"{Path(path).stem}-{digest.hexdigest()}"


def _onnx_in(location: Path, what: str, remedy: str = "pass --model FILE.onnx") -> Path:
    path = location / ONNX_NAME if location.is_dir() else location
    if path.is_file():
        return path
    if location.is_dir():
        raise ModelNotFoundError(f"{what} has no ONNX export ({path} is missing); {remedy}")
    raise ModelNotFoundError(f"the files of {what} are gone ({location} is missing)")


def _version(store: ProjectStore, task: str, name: str) -> ResolvedModel:
    version = store.model_version(task, name)
    if version is None:
        known = ", ".join(v["version"] for v in store.model_versions(task)) or "none"
        raise ModelNotFoundError(f"no {task} model version {name!r} in this project (known: {known})")
    if version["path"] is None:
        raise ModelNotFoundError(f"model version {task}/{name} records no files")
    remedy = f"activating it makes one ({models_command(store, task, 'activate', name)})"
    return ResolvedModel(_onnx_in(Path(version["path"]), f"model version {task}/{name}", remedy), name, "project")


def _default(store: ProjectStore | None, task: str) -> ResolvedModel:
    if store is not None:
        active = store.active_model(task)
        if active is not None:
            try:
                return _version(store, task, active["version"])
            except ModelNotFoundError as e:
                where = "Roll back in the studio's Models panel, or `" if task == task_for_schema(store.schema) \
                    else "`"
                raise ModelNotFoundError(f"the active {task} model cannot be used: {e}. Roll back ({where}"
                                         f"{models_command(store, task, 'rollback')}`) or activate another version"
                                         ) from None
    starter = _starter(task)
    if starter is not None:
        return starter
    where = f"no active {task} model in the project and " if store is not None else ""
    raise ModelNotFoundError(f"no model available: train one or pass --model ({where}no starter {task} model is "
                             "installed)")


def _starter(task: str) -> ResolvedModel | None:
    starter = starter_model_path(task)
    return ResolvedModel(starter, file_model_id(starter), "starter") if starter.is_file() else None


def find_model(store: ProjectStore | None, name_or_path: str | os.PathLike | None = None,
               task: str = "parser") -> ResolvedModel:
    """The model to use and its id. `name_or_path`: an .onnx file, a model folder, a project version name,
    a task name ("parser", "mask") or "active" for the project's active model (the starter model while none is
    active), "starter" for the shipped model, or None for the active one of `task`."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if name_or_path is None or str(name_or_path) == "":
        return _default(store, task)
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        return ResolvedModel(path.resolve(), file_model_id(path), "file")
    if path.is_dir():
        onnx_path = _onnx_in(path, f"the folder {path}")
        return ResolvedModel(onnx_path.resolve(), file_model_id(onnx_path), "file")
    if text.lower().endswith(".onnx") or os.sep in text or "/" in text:
        raise ModelNotFoundError(f"model file not found: {path}")
    if text in TASKS:
        return _default(store, text)
    if text == "active":
        return _default(store, task)
    if text == "starter":
        starter = _starter(task)
        if starter is None:
            raise ModelNotFoundError(f"no starter {task} model is installed")
        return starter
    if store is None:
        raise ModelNotFoundError(f"{text!r} is neither a model file nor a folder; model version names need a project")
    return _version(store, task, text)


def resolve_model(store: ProjectStore | None, name_or_path: str | os.PathLike | None = None,
                  task: str = "parser") -> Path:
    """Path to the .onnx file `find_model` chooses."""
    return find_model(store, name_or_path, task).path
