"""`faceparse train`, `models`, `eval` and `jobs`: the retrain loop from a terminal.

`train` runs the same background job the GUI's retrain button starts (a separate process, see core/jobs.py) and
follows it with a progress bar showing the live loss; Ctrl-C cancels the job and leaves the active model in place.
`models` lists a project's model versions, activates or rolls back one, and deletes old ones; `eval` measures any
model on a project's validation faces or on a folder of images with masks; `jobs` lists a project's jobs, prints a
job's log, cancels it or deletes old finished ones.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from faceparse.app.argtypes import int_at_least, path_text
from faceparse.app.cli import CommandError, progress_bar
from faceparse.core.store import JOBS_KEPT, ProjectStore
from faceparse.core.versions import KEEP_VERSIONS
from faceparse.core.wording import counted

TASK_CHOICES = ("parser", "mask")
SIZE_HELP = ("training input size in pixels, a multiple of 32 (default: the input size of the model training "
             "starts from, as its meta.json records it: 512 for the shipped starter parser, 256 for the starter "
             "mask model, for a version the size it was trained at; from imagenet or scratch, 256 for the parser "
             "and 192 for the mask model)")


def register(subparsers: argparse._SubParsersAction) -> None:
    register_train(subparsers)
    register_models(subparsers)
    register_eval(subparsers)
    register_jobs(subparsers)


# --- train -----------------------------------------------------------------------------------------------------------

def register_train(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="fine-tune a model on the corrected faces (background process, progress bar)",
        description="Fine-tune the project's model on its corrected and reviewed faces, measure it on the fixed "
                    "validation faces, save it as a new version and activate it only if it beats the active "
                    "model. Ctrl-C cancels; the active model stays.")
    p.add_argument("folder", metavar="FOLDER", type=path_text)
    p.add_argument("--task", choices=TASK_CHOICES, help="parser or mask (default: what the project's schema calls for)")
    p.add_argument("--epochs", type=int, metavar="N")
    p.add_argument("--from", dest="init", metavar="VERSION",
                   help="start from this version (or 'starter', 'imagenet', 'scratch'); default: the active model, "
                        "else the starter model")
    p.add_argument("--size", type=int, dest="input_size", metavar="PX", help=SIZE_HELP)
    p.add_argument("--batch", type=int, dest="batch_size", metavar="N")
    p.add_argument("--lr", type=float, metavar="RATE")
    p.add_argument("--patience", type=int, metavar="EPOCHS", help="stop after this many epochs without improvement")
    p.add_argument("--time-limit", type=_minutes, metavar="MINUTES",
                   help="stop training after this many minutes (default 30; the schedule is shortened to fit, so "
                        "training may end before --epochs); no limit: --config '{\"time_limit_s\": null}'")
    p.add_argument("--max-steps", type=int_at_least(1), metavar="N",
                   help="stop fine-tuning after N optimiser steps (masked pre-training has its own count, 300 by "
                        "default: --config '{\"pretrain_steps\": N}')")
    p.add_argument("--threads", type=int_at_least(1), metavar="N", help="CPU threads for training")
    promote = p.add_mutually_exclusive_group()
    promote.add_argument("--force", action="store_const", const="force", dest="promote",
                         help="activate the new version even if it is not better")
    promote.add_argument("--no-promote", action="store_const", const="never", dest="promote",
                         help="save the new version without activating it")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX export unless the new version is activated "
                   "(the active version always has one, for pre-labeling)")
    p.add_argument("--no-repredict", action="store_true", help="do not re-predict uncorrected faces afterwards")
    p.add_argument("--pretrain", choices=("auto", "yes", "no"), help="masked pre-training phase (default auto)")
    p.add_argument("--config", metavar="JSON", help="further training options as a JSON object")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run_train)


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of minutes above 0, got {text}")
    return value


def _default_task(store: ProjectStore) -> str:
    from faceparse.core.model_resolver import task_for_schema

    return task_for_schema(store.schema)


def train_config(args: argparse.Namespace, store: ProjectStore) -> Any:
    from faceparse.core.recipes import ConfigError, TrainConfig

    options: dict[str, Any] = {}
    if args.config:
        try:
            options = json.loads(args.config)
        except json.JSONDecodeError as e:
            raise CommandError(f"--config is not valid JSON: {e}") from None
        if not isinstance(options, dict):
            raise CommandError("--config must be a JSON object")
    flags = {"epochs": args.epochs, "init": args.init, "input_size": args.input_size, "batch_size": args.batch_size,
             "lr": args.lr, "patience": args.patience, "max_steps": args.max_steps, "threads": args.threads,
             "promote": args.promote,
             "time_limit_s": None if args.time_limit is None else args.time_limit * 60,
             "pretrain": {"yes": True, "no": False, "auto": "auto", None: None}[args.pretrain]}
    if args.no_onnx:
        flags["export_onnx"] = False
    if args.no_repredict:
        flags["repredict"] = False
    task = args.task or options.pop("task", None) or _default_task(store)
    try:
        return TrainConfig.from_dict({**options, **{k: v for k, v in flags.items() if v is not None}, "task": task})
    except ConfigError as e:
        raise CommandError(_in_flag_words(str(e), flags)) from None


FLAG_OF_KEY = {"input_size": "--size", "batch_size": "--batch", "epochs": "--epochs", "lr": "--lr",
               "patience": "--patience", "max_steps": "--max-steps", "threads": "--threads"}


def _in_flag_words(message: str, flags: dict[str, Any]) -> str:
    """A refusal that starts with a config key names the flag instead when the value came from that flag, the
    words the user typed."""
    key = message.split(" ", 1)[0]
    if key in FLAG_OF_KEY and flags.get(key) is not None:
        return FLAG_OF_KEY[key] + message[len(key):]
    return message


class ProgressView:
    """Turns job events into a progress bar (live loss) and a few readable lines on stderr."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.bar = None
        self.bar_phase: str | None = None

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            self.bar_phase = None

    def _write(self, line: str) -> None:
        from tqdm import tqdm

        tqdm.write(line, file=self.stream)

    def show(self, event: Any) -> None:
        if event.final:
            self._close_bar()
            return
        if event.phase == "validate":
            self._write(f"  {event.message}")
            return
        if event.step is not None and event.total:
            if self.bar_phase != event.phase:
                self._close_bar()
                self.bar = progress_bar(event.total, self.stream, desc=event.phase, unit="step", leave=True)
                self.bar_phase = event.phase
            self.bar.total = event.total
            postfix = {}
            if event.loss is not None:
                postfix["loss"] = f"{event.loss:.4f}"
            if event.eta_s is not None:
                postfix["eta"] = f"{event.eta_s:.0f}s"
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(min(event.step, event.total) - self.bar.n)
            return
        if event.message:
            self._close_bar()
            self._write(f"[{event.phase}] {event.message}")

    def close(self) -> None:
        self._close_bar()


@contextlib.contextmanager
def _hangup_and_terminate_interrupt() -> Iterator[None]:
    """While a job is followed, closing the terminal (SIGHUP) or `kill` (SIGTERM) count as Ctrl-C: the job runs in
    its own session, so without this it would go on, and might promote a model, with nobody watching."""
    names = [name for name in ("SIGHUP", "SIGTERM") if hasattr(signal, name)]
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = {name: signal.signal(getattr(signal, name), interrupt) for name in names}
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)


def follow(handle: Any, view: ProgressView) -> Any:
    """Show a job's events until it ends; the first Ctrl-C (or SIGHUP, SIGTERM) cancels it, a second one stops it
    at once."""
    with _hangup_and_terminate_interrupt():
        return _follow(handle, view)


def _follow(handle: Any, view: ProgressView) -> Any:
    interrupted = 0
    while True:
        try:
            for event in handle.events():
                view.show(event)
            break
        except KeyboardInterrupt:
            interrupted += 1
            if interrupted == 1:
                handle.cancel()
            else:
                handle.process.kill()
            with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
                view.close()
                if interrupted == 1:
                    print("cancelling the job (Ctrl-C again to stop it at once)…", file=sys.stderr, flush=True)
    view.close()
    return handle.wait(), interrupted > 0


def _pct(value: Any) -> str:
    return "  n/a" if value is None else f"{100 * value:5.1f}"


def print_result(outcome: Any, result: dict[str, Any] | None) -> None:
    print(f"Job {outcome.job_id} {outcome.state}: {outcome.message}")
    if not result or not result.get("metrics"):
        return
    m = result["metrics"]
    print(f"Validation ({counted(m.get('images', 0), 'face')}): {result['metric']} {_pct(result['score']).strip()}"
          + (f" ({'starter' if result.get('baseline_source') == 'starter' else 'active'} model before: "
             f"{_pct(result['baseline_score']).strip()})" if result.get("baseline_score") is not None else "")
          + (f", before training: {_pct(result['initial_score']).strip()}"
             if result.get("initial_score") is not None else ""))
    print(f"  pixel accuracy {_pct(m.get('pixel_accuracy'))}   mIoU {_pct(m.get('miou'))}   "
          f"mean F1 {_pct(m.get('mean_f1'))}   mIoU w/o background {_pct(m.get('miou_no_bg'))}")


def run_train(args: argparse.Namespace) -> int:
    from faceparse.core.datasets import DatasetError, task_target
    from faceparse.core.jobs import JobConflict, JobRunner

    store = ProjectStore.open(args.folder)
    try:
        config = train_config(args, store)
        try:
            task_target(store.schema, config.task)
        except DatasetError as e:
            raise CommandError(str(e)) from None
        if store.count(("corrected", "reviewed")) == 0:
            raise CommandError(f"{store.root} has no corrected or reviewed faces yet; correct some predictions "
                               "first, then train")
        _check_start(store, config)
        _check_models_folder(store, config)
        _check_pretrain(store, config)
        _warn_without_validation(store, config)
        runner = JobRunner(store)
        try:
            handle = runner.start_retrain(config)
        except JobConflict as e:
            raise CommandError(f"{e} (faceparse jobs {args.folder} lists it; --cancel ID cancels it)") from None
        print(f"Started {config.task} training job {handle.job_id} on {store.root}", file=sys.stderr, flush=True)
        outcome, interrupted = follow(handle, ProgressView())
        if args.json:
            print(json.dumps({"job_id": outcome.job_id, "state": outcome.state, "message": outcome.message,
                              "result": outcome.result}, indent=2))
        else:
            print_result(outcome, outcome.result)
            _say_how_to_activate_unmeasured(args.folder, config, outcome.result)
            print(f"Log: stored in the project (faceparse jobs {args.folder} --log {outcome.job_id})")
    finally:
        store.close()
    if outcome.state == "done":
        return 0
    return 130 if interrupted else 1


def _warn_without_validation(store: ProjectStore, config: Any) -> None:
    """Say before the job starts, not only in its log, that no corrected face is kept for validation: the new
    model then cannot be measured, trains to its epoch or time limit with nothing to stop it early, and never
    replaces the active model on its own merit."""
    from faceparse.core.datasets import has_validation_faces

    if has_validation_faces(store):
        return
    outcome = {"force": "it is activated anyway, as --force asks",
               "never": "it is saved without being activated, as --no-promote asks"}.get(
        config.promote, "it will not replace the active model unless you add --force")
    print(f"warning: none of the corrected faces is a validation face yet (about one in five is kept for "
          f"validation), so the new model cannot be measured and trains until its epoch or time limit; {outcome}. "
          "Correct more images first to have it measured.", file=sys.stderr, flush=True)


def _say_how_to_activate_unmeasured(folder: str, config: Any, result: dict[str, Any] | None) -> None:
    """After a retrain with no validation face, the ways to use the new version anyway."""
    if config.promote != "auto" or not result or result.get("promoted") or not result.get("version") \
            or (result.get("data") or {}).get("val") != 0:
        return
    print(f"It could not be measured, so it was not activated: activate it with `faceparse models {folder} activate "
          f"{result['version']}`, or retrain with --force; correct more images to have new versions measured.")


def _check_start(store: ProjectStore, config: Any) -> None:
    """Refuse a --from version the project does not have before a job exists, not after the job has snapshotted
    the data."""
    from faceparse.core.store import ProjectError
    from faceparse.core.versions import resolve_version

    if config.init in ("auto", "imagenet", "scratch"):
        return
    try:
        resolve_version(store, config.task, config.init)
    except ProjectError as e:
        raise CommandError(f"--from {config.init}: {e}; give a version, or starter, imagenet or scratch") from None


def _check_models_folder(store: ProjectStore, config: Any) -> None:
    """Refuse a project whose models folder cannot take the new version before training, not after it."""
    from faceparse.core.train_worker import models_folder_problem

    problem = models_folder_problem(store, config.task)
    if problem is not None:
        raise CommandError(f"{problem}; a trained model could not be saved there, so training did not start")


def _check_pretrain(store: ProjectStore, config: Any) -> None:
    """Refuse an asked-for masked pre-training that cannot run (too few images, a network it cannot pre-train)
    before a job exists, by the core's own rules, rather than fail the job after its snapshot and baseline."""
    if config.pretrain is not True:
        return
    from faceparse.core.pretrain import pretrain_problem

    problem = pretrain_problem(store, config)
    if problem:
        raise CommandError(f"--pretrain yes: {problem}; train without it (--pretrain auto or no)")


# --- models ----------------------------------------------------------------------------------------------------------

def register_models(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list, activate, roll back or delete a project's model versions",
                              description="List the model versions of the project in FOLDER, activate one, or roll "
                                          "back to the previously active one (or to VERSION); past the first "
                                          "version, or with VERSION 'starter', to the starter model. delete "
                                          "removes VERSION for good (never the active one); prune deletes every "
                                          "version but the active one and the --keep newest others (of every task "
                                          "unless --task is given).")
    p.add_argument("folder", metavar="FOLDER", type=path_text)
    p.add_argument("action", nargs="?", choices=("list", "activate", "rollback", "delete", "prune"), default="list")
    p.add_argument("version", nargs="?", metavar="VERSION")
    p.add_argument("--task", choices=TASK_CHOICES)
    p.add_argument("--keep", type=int_at_least(0), metavar="N",
                   help=f"prune: how many versions besides the active one to keep, newest first (default "
                        f"{KEEP_VERSIONS})")
    p.add_argument("--dry-run", action="store_true", help="prune: only list what would be deleted")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run_models)


def _model_name(task: str, row: dict) -> str:
    from faceparse.core.versions import STARTER

    return f"the starter {task} model" if row["version"] == STARTER else f"{task} {row['version']}"


def _say_now(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_models(args: argparse.Namespace) -> int:
    from faceparse.core.versions import activate, list_versions, rollback

    if args.action != "prune" and (args.keep is not None or args.dry_run):
        raise CommandError("--keep and --dry-run go with models prune")
    if args.action in ("list", "prune") and args.version:
        raise CommandError(f"models {args.action} takes no VERSION (got {args.version!r}); it goes with activate, "
                           "rollback and delete")
    looking = args.action == "list" or (args.action == "prune" and args.dry_run)
    with _open_project(args.folder, only_reading=looking) as store:
        task = args.task or _default_task(store)
        if args.action == "delete":
            return _delete_version(store, task, args.version)
        if args.action == "prune":
            return _prune_versions(store, args)
        if args.action == "activate":
            if not args.version:
                raise CommandError("models activate needs a VERSION")
            row = activate(store, task, args.version, announce=_say_now)
            print(f"{_model_name(task, row)} is now active")
            return 0
        if args.action == "rollback":
            row = rollback(store, task, args.version, announce=_say_now)
            print(f"rolled back: {_model_name(task, row)} is now active")
            return 0
        rows = list_versions(store, args.task)
        starter_note = _starter_note(store, task)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("No model versions yet; train one with: faceparse train FOLDER")
        if starter_note:
            print(starter_note)
        return 0
    from faceparse.core.checkpoint_layout import has_checkpoint

    print(f"  {'task':<7}{'version':<9}{'created':<22}{'score':>7}  {'metric':<11}{'val':>5}  {'parent':<8}")
    for row in rows:
        metrics = row["metrics"] or {}
        gone = "" if has_checkpoint(row.get("path") or None) else "  files missing"
        print(f"{'*' if row['active'] else ' '} {row['task']:<7}{row['version']:<9}{row['created']:<22}"
              f"{_pct(metrics.get('score')):>7}  {str(metrics.get('metric', '')):<11}"
              f"{metrics.get('val_images', ''):>5}  {row['parent'] or '-':<8}{gone}".rstrip())
    if any(row["active"] for row in rows):
        print("* active")
    if starter_note:
        print(starter_note)
    return 0


def _open_project(folder: str, only_reading: bool) -> ProjectStore:
    """A command that only lists opens the project as `info` does, so it works where the project cannot be
    written too (read-only media, another user's folder)."""
    return ProjectStore.open_for_reading(folder) if only_reading else ProjectStore.open(folder)


def _megabytes(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:.1f} MB"


def _delete_version(store: ProjectStore, task: str, version: str | None) -> int:
    from faceparse.core.versions import delete_version

    if not version:
        raise CommandError("models delete needs a VERSION")
    deleted = delete_version(store, task, version)
    if deleted.files_kept:
        print(f"deleted {task} {version} from the project; its files outside the project stay at "
              f"{deleted.files_kept}")
    else:
        print(f"deleted {task} {version} ({_megabytes(deleted.size_bytes)} freed)")
    return 0


def _prune_versions(store: ProjectStore, args: argparse.Namespace) -> int:
    """Exits 1 when a version that was to go could not be deleted (the others still are)."""
    from faceparse.core.versions import prune_versions

    if args.version:
        raise CommandError("models prune takes no VERSION; to delete one version: models FOLDER delete VERSION")
    keep = KEEP_VERSIONS if args.keep is None else args.keep
    tasks = [args.task] if args.task else sorted({row["task"] for row in store.model_versions()})
    results = [prune_versions(store, task, keep, args.dry_run) for task in tasks]
    verb = "would delete" if args.dry_run else "deleted"
    for result in results:
        for gone in result.deleted:
            print(f"{verb} {gone.task} {gone.version} ({_megabytes(gone.size_bytes)})")
        for version, reason in result.refused:
            print(f"{'would keep' if args.dry_run else 'kept'} {result.task} {version}: {reason}", file=sys.stderr)
    count = sum(len(result.deleted) for result in results)
    freed = _megabytes(sum(result.bytes_freed for result in results))
    if args.dry_run:
        print(f"{counted(count, 'version')} would be deleted, {freed} freed (dry run: nothing was deleted)")
    elif count:
        print(f"{counted(count, 'version')} deleted, {freed} freed")
    elif not any(store.model_versions(task) for task in tasks):
        print("Nothing to prune: the project has no trained model versions")
    else:
        print(f"Nothing to prune: the active version and the {keep} newest others are kept")
    return 1 if any(result.refused for result in results) else 0


def _starter_note(store: ProjectStore, task: str) -> str:
    """What pre-labels the project while no version of `task` is active; said only for the task its schema
    pre-labels with (a parser project never pre-labels with the mask model, whatever --task lists)."""
    from faceparse.core.model_resolver import starter_model_path, task_for_schema
    from faceparse.core.prelabel import describe_starter, starter_problem

    if task != task_for_schema(store.schema) or store.active_model(task) is not None \
            or not starter_model_path(task).is_file():
        return ""
    active_mask = store.active_model("mask")
    starter = describe_starter(store.schema, task, active_mask["version"] if active_mask is not None else None)
    if starter is None:
        return (f"No {task} version is active, and the starter {task} model cannot pre-label the project: "
                f"{starter_problem(store.schema, task)}")
    return f"No {task} version is active: the project pre-labels with {starter}"


# --- eval ------------------------------------------------------------------------------------------------------------

def register_eval(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="measure a model on labeled faces (metrics table or JSON)",
                              description="Measure a model on DATA: a project (its fixed validation faces by "
                                          "default) or a folder of images with same-named index PNG masks.")
    p.add_argument("--model", required=True, metavar="M",
                   help="a checkpoint folder, an .onnx file, a version of the DATA project (v0003, active), or "
                        "starter (also parser or mask: that task's starter model, or on a project its active "
                        "model); on a project the starter model is measured as it pre-labels the project")
    p.add_argument("data", metavar="DATA", type=path_text)
    p.add_argument("--masks", metavar="DIR", type=path_text, help="mask folder for a plain image folder (default DATA/masks)")
    p.add_argument("--schema", metavar="NAME|FILE.json",
                   help="the masks' schema, when it is not the model's: scores are over the coarser of the two "
                        "schemas, through whichever declares a mapping to the other (refused when neither does)")
    p.add_argument("--split", choices=("val", "train", "all"),
                   help="a project's faces to use (default val, its fixed validation faces)")
    p.add_argument("--mode", choices=("whole-image", "faces"), default=None,
                   help="a plain folder's framing: whole-image (default) parses each image whole, as aligned face "
                        "crops are; faces finds the faces and scores the masks pasted back into each photo, as "
                        "pre-labeling in faces mode makes them (a project is always scored in its own mode)")
    p.add_argument("--task", choices=TASK_CHOICES,
                   help="for version names and starter: which task's model (default: the project's; the parser "
                        "for a plain folder)")
    p.add_argument("--onnx", action="store_true", help="run a version's ONNX export instead of its checkpoint")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run_eval)


def _predictor_for(args: argparse.Namespace, store: ProjectStore | None) -> Any:
    from faceparse.core.datasets import DatasetError
    from faceparse.core.evaluate import ONNX_NAME, EvaluationError, open_predictor, starter_scorer
    from faceparse.core.face_and_mask import mask_partner
    from faceparse.core.versions import STARTER, resolve_version

    prefer = "onnx" if args.onnx else "torch"
    path = Path(args.model).expanduser()
    try:
        if not path.exists():
            if _looks_like_a_path(args.model):
                raise CommandError(f"model file not found: {args.model}")
            if store is None:
                return open_predictor(_starter_without_project(args), prefer)
            task, spec = (args.model, "active") if args.model in TASK_CHOICES else \
                (args.task or _default_task(store), args.model)
            row = resolve_version(store, task, spec)
            if row["version"] == STARTER:
                notes: list[str] = []
                partner = mask_partner(store) if task == "parser" else None
                scorer = starter_scorer(store.schema, task, notes=notes, prefer=prefer, mask_partner=partner)
                for line in notes:
                    print(f"note: {line}", file=sys.stderr)
                return scorer
            path = Path(row["path"])
        if args.onnx and path.is_dir() and not (path / ONNX_NAME).is_file():
            raise CommandError(f"{path} has no ONNX export to measure; activating the version makes one "
                               "(faceparse models FOLDER activate VERSION), or leave out --onnx")
        return open_predictor(path, prefer)
    except EvaluationError as e:
        raise CommandError(str(e)) from None
    except DatasetError as e:
        raise _eval_dataset_error(e, store) from None


def _eval_dataset_error(error: Exception, store: ProjectStore | None, task: str | None = None) -> CommandError:
    """What `eval` says when the project's masks cannot score a face-mask model (`task` "mask", or None when not
    yet known): the training wording (use --task ...) would send the user to an option that does not change which
    model is scored."""
    from faceparse.core.datasets import MASK_CLASS

    if store is not None and task in (None, "mask") and MASK_CLASS not in store.schema.classes:
        return CommandError(f"the project's schema {store.schema.name!r} has no {MASK_CLASS!r} class, so its "
                            "masks cannot score the face-mask segmenter; evaluate the parser (--model parser), "
                            "or a project made with the face-mask or masked-faces schema")
    return CommandError(str(error))


def _starter_without_project(args: argparse.Namespace) -> Path:
    """The shipped starter model named without a project to hold versions ("starter", "active", "parser",
    "mask", as `predict` takes them): its checkpoint, or its ONNX export with --onnx."""
    from faceparse.core.model_resolver import starter_model_path
    from faceparse.core.versions import starter_checkpoint

    if args.model not in ("starter", "active", *TASK_CHOICES):
        raise CommandError(f"model not found: {args.model} (version names need DATA to be a project)")
    task = args.model if args.model in TASK_CHOICES else args.task or "parser"
    path = starter_model_path(task) if args.onnx else starter_checkpoint(task)
    if path is None or not path.exists():
        raise CommandError(f"no starter {task} model is installed")
    return path


def _looks_like_a_path(model: str) -> bool:
    """A model given as a path (not a version name such as v0003, parser/v0003 or starter)."""
    folder, _, _ = model.rpartition("/")
    return (bool(folder) and folder not in TASK_CHOICES) or model.startswith(("~", ".")) \
        or model.endswith((".onnx", ".safetensors"))


class CountBar:
    """A tqdm bar on stderr fed by (done, total) reports, made on the first report (when the total is known)."""

    def __init__(self, desc: str, unit: str):
        self.desc = desc
        self.unit = unit
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = progress_bar(total, desc=self.desc, unit=self.unit)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _measured_in_masks_schema(predictor: Any, args: argparse.Namespace, store: ProjectStore | None) -> Any:
    from faceparse.core.evaluate import EvaluationError, measured_in

    masks_schema = store.schema if store is not None else args.schema
    try:
        return measured_in(predictor, masks_schema, predictor.meta["task"])
    except EvaluationError as e:
        raise CommandError(str(e)) from None


def _eval_samples(args: argparse.Namespace, data: Path, store: ProjectStore | None, meta: dict[str, Any]) -> list:
    from faceparse.core.datasets import DatasetError
    from faceparse.core.evaluate import EvaluationError, folder_samples, project_samples
    from faceparse.core.faces import FACES
    from faceparse.core.framing import Framing

    task = meta["task"]
    left_out: list[str] = []
    try:
        if store is not None:
            samples = project_samples(store, task, args.split or "val", model_schema=meta["schema"],
                                      left_out=left_out)
        else:
            framing = Framing(mode=FACES) if args.mode == "faces" else None
            samples = folder_samples(data, args.masks, args.schema, task, model_schema=meta["schema"],
                                     framing=framing, left_out=left_out)
    except DatasetError as e:
        raise _eval_dataset_error(e, store, task) from None
    except EvaluationError as e:
        raise CommandError(str(e)) from None
    _say_left_out(left_out)
    return samples


def _refuse_options_that_do_not_apply(args: argparse.Namespace, data: Path, store: ProjectStore | None) -> None:
    """An option meant for the other kind of DATA would be ignored, and the score taken for what was asked."""
    if store is not None and args.mode is not None:
        raise CommandError(f"{data} is a project; it is scored in its own pre-labeling mode, so --mode (for a plain "
                           "folder) does not apply")
    if store is not None and args.schema and args.schema.lower() != store.schema.name.lower():
        raise CommandError(f"{data} is a project; its masks are in its own schema {store.schema.name!r}, so "
                           "--schema (the schema of a mask folder) does not apply")
    if store is not None and args.masks is not None:
        raise CommandError(f"{data} is a project; its own human-checked masks are scored, so --masks (the mask "
                           "folder of a plain image folder) does not apply")
    if store is None and args.split is not None:
        raise CommandError(f"{data} is not a project; every image with a mask is scored, so --split (which of a "
                           "project's faces) does not apply")


LEFT_OUT_SHOWN = 20


def _say_left_out(left_out: list[str]) -> None:
    """Name the images that were not scored and why, so that a score over fewer faces is not taken for all."""
    if not left_out:
        return
    count = len(left_out)
    print(f"note: left out {count:,} image{'' if count == 1 else 's'} that cannot be scored:", file=sys.stderr)
    for line in left_out[:LEFT_OUT_SHOWN]:
        print(f"  {line}", file=sys.stderr)
    if count > LEFT_OUT_SHOWN:
        print(f"  … and {count - LEFT_OUT_SHOWN:,} more", file=sys.stderr)


def _measure(predictor: Any, samples: list, task: str) -> dict[str, Any]:
    from faceparse.core.evaluate import EvaluationError, evaluate

    bar = CountBar("eval", "image")
    try:
        return evaluate(predictor, samples, task, progress=bar)
    except EvaluationError as e:
        raise CommandError(str(e)) from None
    finally:
        bar.close()


def run_eval(args: argparse.Namespace) -> int:
    data = Path(args.data).expanduser()
    if not data.exists():
        raise CommandError(f"folder does not exist: {data}")
    if not data.is_dir():
        raise CommandError(f"{data} is not a folder; DATA is a project or a folder of images with same-named masks")
    store = ProjectStore.open_for_reading(data) if ProjectStore.is_project(data) else None
    try:
        _refuse_options_that_do_not_apply(args, data, store)
        predictor = _measured_in_masks_schema(_predictor_for(args, store), args, store)
        samples = _eval_samples(args, data, store, predictor.meta)
        if not samples:
            raise CommandError(f"no labeled faces in the {args.split or 'val'} split of {data}")
        metrics = _measure(predictor, samples, predictor.meta["task"])
    finally:
        if store is not None:
            store.close()
    metrics.setdefault("framing", "whole_image")
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    print_metrics(metrics, predictor.meta)
    if metrics["framing"] == "faces":
        print(f"Scored as this project pre-labels: {counted(metrics['faces_found'], 'face')} cropped, predicted and "
              f"pasted back into their photos; {counted(metrics['whole_image_fallbacks'], 'photo')} with no face "
              "found scored whole")
    return 0


def print_metrics(metrics: dict[str, Any], meta: dict[str, Any]) -> None:
    name = f"{meta.get('task')} {meta.get('version') or ''} ({meta.get('architecture')})".replace("  ", " ")
    what = "photo" if metrics.get("framing") == "faces" else "face"
    print(f"Model {name} on {counted(metrics['images'], what)}, {metrics['pixels']:,} pixels")
    rows = [("pixel accuracy", "pixel_accuracy"), ("mean class accuracy", "mean_accuracy"), ("mIoU", "miou"),
            ("mean F1", "mean_f1"), ("mIoU w/o background", "miou_no_bg"), ("mean F1 w/o background",
                                                                            "mean_f1_no_bg")]
    if meta.get("task") == "mask":
        rows += [("IoU (mask)", "iou"), ("F1 (mask)", "f1"), ("precision", "precision"), ("recall", "recall"),
                 ("MAE", "mae"), ("F-beta (b2=0.3)", "fbeta"), ("S-measure", "smeasure")]
    for label, key in rows:
        value = metrics.get(key)
        shown = "n/a" if value is None else (f"{value:.4f}" if key == "mae" else f"{100 * value:.2f}")
        print(f"  {label:<24}{shown:>8}")
    print(f"  {'class':<16}{'IoU':>8}{'F1':>8}")
    for cls, iou in metrics["per_class_iou"].items():
        print(f"  {cls:<16}{_pct(iou):>8}{_pct(metrics['per_class_f1'][cls]):>8}")


# --- jobs ------------------------------------------------------------------------------------------------------------

def register_jobs(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("jobs", help="list a project's jobs, show a job's log, cancel a job",
                              description="List the project's jobs, training and pre-labeling (id, kind, state, "
                                          "progress and its last message), print one job's log, or ask a running "
                                          "job to stop (a stopped training leaves the active model as it was). "
                                          "Finished jobs beyond the newest "
                                          f"{JOBS_KEPT} are deleted as new ones start; --prune deletes more.")
    p.add_argument("folder", metavar="FOLDER", type=path_text)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--log", type=int, metavar="ID", help="print the log of job ID")
    group.add_argument("--cancel", type=int, metavar="ID", help="ask job ID to stop")
    group.add_argument("--prune", type=int_at_least(0), metavar="KEEP",
                       help="delete finished jobs and their logs, all but the newest KEEP (queued and running jobs "
                            "stay)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run_jobs)


def run_jobs(args: argparse.Namespace) -> int:
    from faceparse.core.jobs import reap_stale_jobs

    with _open_project(args.folder, only_reading=args.cancel is None and args.prune is None) as store:
        if args.log is not None:
            if store.job(args.log) is None:
                raise CommandError(f"no job {args.log} in {store.root}")
            if args.json:
                print(json.dumps({"job": args.log, "log": store.job_log(args.log)}, indent=2))
                return 0
            for line in store.job_log(args.log):
                print(line)
            return 0
        if args.cancel is not None:
            if store.job(args.cancel) is None:
                raise CommandError(f"no job {args.cancel} in {store.root}")
            reap_stale_jobs(store)
            job = store.job(args.cancel)
            if job["state"] not in ("queued", "running"):
                raise CommandError(f"job {args.cancel} has already ended ({job['state']})")
            store.request_cancel(args.cancel)
            print(json.dumps({"job": args.cancel, "cancel_requested": True}) if args.json else
                  f"asked job {args.cancel} to stop")
            return 0
        if args.prune is not None:
            reap_stale_jobs(store)
            deleted = store.prune_jobs(args.prune)
            print(json.dumps({"deleted": deleted}) if args.json else f"deleted {counted(deleted, 'finished job')}")
            return 0
        if not store.read_only:  # a read-only project keeps the states its jobs last recorded
            reap_stale_jobs(store)
        jobs = store.jobs()
    if args.json:
        print(json.dumps(jobs, indent=2))
        return 0
    if not jobs:
        print("No jobs yet.")
    else:
        print(f"{'id':>5}  {'kind':<10}{'state':<10}{'done':>6}  message")
    for job in jobs:
        print(f"{job['id']:>5}  {job['kind']:<10}{job['state']:<10}{100 * (job['progress'] or 0):5.0f}%  "
              f"{job['message']}")
    return 0
