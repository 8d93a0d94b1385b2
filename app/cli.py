"""The `faceparse` command line: every headless action of the studio, for scripts, servers and tests.

Commands register themselves: a command module exposes `register(subparsers)`, which adds its sub-parser and sets
`handler=<function(args) -> int>` as a default. The built-in `scan` and `info` live here; other modules are listed
in the `faceparse.app.commands` package (COMMAND_MODULES). A handler signals a mistake the user can fix by raising CommandError (or a ProjectError,
SchemaError or ImageLoadError from the core): it is printed as one line and the exit code is 2, never a traceback.
A file system or database failure (OSError, sqlite3.OperationalError) is reported the same way. Ctrl-C exits 130
with one line, and a reader that closed our output ends the program quietly with 141 (as if killed by SIGPIPE). The
core is imported lazily, so that Ctrl-C while the program starts is caught too.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sqlite3
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from faceparse.app.argtypes import path_text
from faceparse.core.wording import counted

if TYPE_CHECKING:
    from faceparse.core.store import ImageRecord, ProjectStore

USER_ERROR_EXIT = 2
INTERRUPTED_EXIT = 130
BROKEN_PIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a program whose reader went away
SYSTEM_ERRORS: tuple[type[BaseException], ...] = (OSError, sqlite3.OperationalError)

def _command_modules() -> tuple[str, ...]:
    """Every module of `faceparse.app.commands`; each has a `register(subparsers)` function."""
    import pkgutil

    from faceparse.app import commands

    return tuple(f"{commands.__name__}.{m.name}" for m in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name))


COMMAND_MODULES: tuple[str, ...] = _command_modules()


class CommandError(Exception):
    """A mistake the user can fix (bad argument, missing file); reported without a traceback."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions reported as a mistake the user can fix (imported here, not at startup: see the docstring)."""
    from faceparse.core.imageio import ImageLoadError
    from faceparse.core.schemas import SchemaError
    from faceparse.core.store import ProjectError

    return CommandError, ProjectError, SchemaError, ImageLoadError


def version() -> str:
    from importlib import metadata

    try:
        return metadata.version("faceparse-studio")
    except metadata.PackageNotFoundError:
        return "0.0.0+dev"


def print_scan_notes(result) -> None:
    """What a folder scan found besides the counts: photos found again under a new name, and entries it left out."""
    for note in result.notes():
        print(note)


def progress_bar(total: int, stream=None, **options):
    """A tqdm bar on stderr (or `stream`). Into a pipe or a log file it is drawn every 30 s instead of several times
    a second, so a log of a long run stays readable; its last state is drawn when it closes. A bar over no work
    is not drawn at all."""
    from tqdm import tqdm

    stream = stream if stream is not None else sys.stderr
    interactive = stream.isatty()
    options.setdefault("disable", total == 0)
    return tqdm(total=total, file=stream, dynamic_ncols=interactive, mininterval=0.2 if interactive else 30,
                **options)


def _n(value: int) -> str:
    return f"{value:,}"


def _print_counts(store: ProjectStore) -> None:
    from faceparse.core.store import STATUSES

    counts = store.counts()
    width = max(len(s) for s in (*STATUSES, "total"))
    numbers = [_n(v) for v in counts.values()] + [_n(sum(counts.values()))]
    num_width = max(len(x) for x in numbers)
    for status in STATUSES:
        print(f"  {status:<{width}}  {_n(counts[status]):>{num_width}}")
    print(f"  {'total':<{width}}  {_n(sum(counts.values())):>{num_width}}")


def _progress_printer(label: str) -> Callable[[int, int], None]:
    interactive = sys.stderr.isatty()

    def report(done: int, total: int) -> None:
        if interactive:
            end = "\n" if done >= total else ""
            print(f"\r{label} {_n(done)}/{_n(total)}", end=end, file=sys.stderr, flush=True)

    return report


# --- scan ----------------------------------------------------------------------------------------------------------

def register_scan(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("scan", help="create or update the project of an image folder",
                              description="Index the images in FOLDER (creating the project on first use) and "
                                          "print how many images are in each status.")
    p.add_argument("folder", metavar="FOLDER", type=path_text)
    p.add_argument("--schema", metavar="NAME|FILE.json",
                   help="label schema for a new project: a built-in name (celebamask-hq, lapa, face-mask, "
                        "masked-faces) or a schema JSON file; for an existing project it must be the project's "
                        "own (a project's schema never changes)")
    p.add_argument("--details", action="store_true",
                   help="also read image sizes and content hashes now (otherwise filled in lazily)")
    p.add_argument("--accept-changed", action="store_true",
                   help="keep the checked masks of photos changed since (retouched, re-encoded or scaled: the same "
                        "picture) instead of reviewing each again in the studio; a scaled photo's mask is scaled "
                        "with it, and a photo of another shape is named and left as it is")
    p.set_defaults(handler=run_scan)


def run_scan(args: argparse.Namespace) -> int:
    from faceparse.core.schemas import resolve_schema
    from faceparse.core.store import ProjectStore

    schema = None
    if args.schema is not None:
        try:
            schema = resolve_schema(args.schema)
        except KeyError as e:
            raise CommandError(e.args[0]) from None
    created = not ProjectStore.is_project(args.folder)
    with ProjectStore.open_or_create(args.folder, schema) as store:
        result = store.scan()
        print(f"{'Created' if created else 'Updated'} project {store.root}")
        print(f"Schema {store.schema.name} ({store.schema.num_classes} classes)")
        print(f"Scanned {counted(result.total, 'image')} in {result.seconds:.2f} s: {_n(result.added)} added, "
              f"{_n(result.removed)} removed, {_n(result.changed)} changed, {_n(result.unchanged)} unchanged")
        _print_changed_files(store, result.changed_paths)
        print_scan_notes(result)
        if args.details:
            checked = store.fill_details(progress=_progress_printer("Reading details"))
            print(f"Read details of {counted(checked, 'image')}; {_n(store.count_errors())} unreadable")
            for rec in [r for r in store.images() if r.error][:10]:
                print(f"  {rec.relpath}: {rec.error}")
        if args.accept_changed:
            _accept_changed(store)
        _print_changed_photos(store.changed_photos())
        _print_counts(store)
    return 0


def _print_changed_files(store: ProjectStore, changed: tuple[str, ...], most: int = 10) -> None:
    """Name the photos counted as changed, so the count can be checked; one of those shown that cannot be read
    says why."""
    if changed:
        print("Changed photos:")
        shown = [_with_error(store, relpath) for relpath in changed[:most]]
        _print_names(shown + list(changed[most:]), most, more_hint="")


def _with_error(store: ProjectStore, relpath: str) -> str:
    rec = store.find(relpath)
    return f"{relpath}: {rec.error}" if rec is not None and rec.error else relpath


def _accept_changed(store: ProjectStore) -> None:
    from faceparse.core.changed_photos import keep_changed_masks

    result = keep_changed_masks(store)
    if not result.kept and not result.refused:
        print("No photo changed since its mask was checked")
        return
    if result.kept:
        scaled = f" ({_n(len(result.scaled))} scaled to the photo's new size)" if result.scaled else ""
        print(f"Kept the masks of {counted(len(result.kept), 'changed photo')} as checked{scaled}")
    for rec, reason in result.refused:
        print(f"  not {rec.relpath}: {reason}")


def _print_changed_photos(changed: list) -> None:
    if not changed:
        return
    print(f"{counted(len(changed), 'photo')} changed since their masks were checked; export and training skip them "
          "until each mask is checked and saved or reviewed again in the studio (or, when the pictures are the "
          "same, kept with scan --accept-changed):")
    for rec in changed[:10]:
        print(f"  {rec.relpath}")


# --- info ----------------------------------------------------------------------------------------------------------

def register_info(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="show a project's schema, counts and models",
                              description="Describe the project in FOLDER without changing it.")
    p.add_argument("folder", metavar="FOLDER", type=path_text)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(handler=run_info)


def project_summary(store: ProjectStore) -> dict:
    from faceparse.core.model_resolver import task_for_schema

    counts = store.counts()
    starter = _starter_in_use(store)
    active = _active_models(store, starter)
    task = task_for_schema(store.schema)
    from faceparse.core.checkpoint_layout import has_checkpoint

    versions: dict[str, list[str]] = {}
    gone: dict[str, list[str]] = {}
    for model in store.model_versions():
        versions.setdefault(model["task"], []).append(model["version"])
        if not has_checkpoint(model["path"] or None):
            gone.setdefault(model["task"], []).append(model["version"])
    return {
        "path": str(store.root),
        "project_dir": str(store.dir),
        "created": store.created,
        "schema": {"name": store.schema.name, "classes": list(store.schema.classes)},
        "counts": counts,
        "total": sum(counts.values()),
        "splits": store.split_counts(),
        "unreadable": store.count_errors(),
        "unreadable_images": [{"relpath": rec.relpath, "error": rec.error} for rec in _unreadable_photos(store)],
        "checked_mask_problems": _checked_mask_problems(store),
        "photos_changed": [rec.relpath for rec in store.changed_photos()],
        "photos_missing": [{"relpath": rec.relpath, "status": rec.status} for rec in store.missing_photos()],
        "details_pending": store.count_pending_details(),
        "active_models": active,
        "starter_models": starter,
        "starter_problem": None if starter is not None or task in active else _starter_problem(store),
        "model_versions": versions,
        "model_versions_missing": gone,
    }


def run_info(args: argparse.Namespace) -> int:
    from faceparse.core.store import ProjectStore

    with ProjectStore.open_for_reading(args.folder) as store:
        summary = project_summary(store)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"Project {summary['path']}")
    print(f"Created {summary['created']}")
    schema = summary["schema"]
    print(f"Schema  {schema['name']} ({len(schema['classes'])} classes: {', '.join(schema['classes'])})")
    print(f"Images  {_n(summary['total'])}")
    for status, n in summary["counts"].items():
        print(f"  {status:<10} {_n(n)}")
    print(f"Split   train {_n(summary['splits']['train'])}, val {_n(summary['splits']['val'])} (the checked images "
          "retraining learns from and measures on; an export deals its own split)")
    if summary["details_pending"]:
        print(f"Details pending for {counted(summary['details_pending'], 'image')}")
    if summary["unreadable"]:
        print(f"Unreadable images: {_n(summary['unreadable'])}")
        _print_names([f"{u['relpath']}: {u['error']}" for u in summary["unreadable_images"]])
    if summary["checked_mask_problems"]:
        print(f"Checked images whose mask file is missing or empty: {_n(len(summary['checked_mask_problems']))} "
              "(skipped by export and training)")
        _print_names([f"{m['relpath']} ({m['status']}): {m['problem']}" for m in summary["checked_mask_problems"]])
    if summary["photos_changed"]:
        print(f"Photos changed since their masks were checked: {_n(len(summary['photos_changed']))} "
              "(skipped by export and training until checked again in the studio)")
        _print_names(summary["photos_changed"])
    if summary["photos_missing"]:
        print(f"Photos gone from the folder, masks kept: {_n(len(summary['photos_missing']))} (they come back "
              "with their masks if the photo does, under its old name or a new one)")
        _print_names([f"{m['relpath']} ({m['status']})" for m in summary["photos_missing"]])
    if summary["model_versions"]:
        print("Models")
        for task, versions in sorted(summary["model_versions"].items()):
            active = summary["active_models"].get(task)
            print(f"  {task}: versions {', '.join(versions)}; active: {active or 'none'}")
            if summary["model_versions_missing"].get(task):
                print(f"    files missing: {', '.join(summary['model_versions_missing'][task])}")
    else:
        print("Models  none trained yet")
    for task, active in sorted(summary["active_models"].items()):
        if active == "starter":
            print(f"  {task}: pre-labels with {summary['starter_models']}")
    if summary["starter_problem"]:
        print(f"  no model can pre-label this project yet: {summary['starter_problem']}")
    return 0


def _unreadable_photos(store: ProjectStore) -> list[ImageRecord]:
    from faceparse.core.store import NEEDS_ATTENTION

    return [rec for rec in store.images(NEEDS_ATTENTION) if rec.error]


def _checked_mask_problems(store: ProjectStore) -> list[dict[str, str]]:
    """Checked images whose mask file is gone or empty, found from the files' sizes alone: decoding every mask of
    a large project would make `info` slow, so a file damaged inside is found only when it is read."""
    from faceparse.core.store import HUMAN_STATUSES

    problems = []
    for rec in store.images(HUMAN_STATUSES):
        problem = _checked_mask_problem(store, rec)
        if problem:
            problems.append({"relpath": rec.relpath, "status": rec.status, "problem": problem})
    return problems


def _checked_mask_problem(store: ProjectStore, rec: ImageRecord) -> str | None:
    """What is wrong with the file holding the person's mask of `rec`, or None. It is the corrected mask; a
    reviewed image saved before approvals were copied there has only the prediction it approved."""
    kinds = ("corrected",) if rec.status == "corrected" else ("corrected", "predicted")
    for kind in kinds:
        try:
            size = store.mask_path(kind, rec.id).stat().st_size
        except FileNotFoundError:
            continue
        except OSError as error:
            return f"its mask file cannot be read ({error.strerror})"
        return None if size else "its mask file is empty"
    return "its mask file is missing"


def _starter_in_use(store: ProjectStore) -> str | None:
    """The starter model(s) that pre-label the project while it has no active version, in words; None when the
    starter model cannot label its schema (see `_starter_problem`)."""
    from faceparse.core.model_resolver import task_for_schema
    from faceparse.core.prelabel import describe_starter

    active_mask = store.active_model("mask")
    return describe_starter(store.schema, task_for_schema(store.schema),
                            active_mask["version"] if active_mask is not None else None)


def _starter_problem(store: ProjectStore) -> str | None:
    from faceparse.core.model_resolver import task_for_schema
    from faceparse.core.prelabel import starter_problem

    return starter_problem(store.schema, task_for_schema(store.schema))


def _print_names(names: list[str], most: int = 10, more_hint: str = " (all of them in --json)") -> None:
    for name in names[:most]:
        print(f"  {name}")
    if len(names) > most:
        print(f"  … and {_n(len(names) - most)} more{more_hint}")


def _active_models(store: ProjectStore, starter: str | None) -> dict[str, str]:
    """Each task's active version; "starter" for the project's task when no version of it is active and the
    shipped starter model can label the project (`starter`, from `_starter_in_use`, is not None), so it
    pre-labels with that."""
    from faceparse.core.model_resolver import task_for_schema

    active = {task: m["version"] for task, m in store.active_models().items()}
    task = task_for_schema(store.schema)
    if task not in active and starter is not None:
        active[task] = "starter"
    return active


# --- entry point ---------------------------------------------------------------------------------------------------

BUILTIN_COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (register_scan, register_info)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceparse",
                                     description="FaceParse Studio: build face-parsing datasets from the command line.",
                                     epilog="The studio (the desktop app) starts with: faceparse-studio [FOLDER]")
    parser.add_argument("--version", action="version", version=f"faceparse {version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in BUILTIN_COMMANDS:
        register(subparsers)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        code = _parse_and_run(argv)
        _flush_stdout()
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    except BrokenPipeError:
        _discard_stdout()
        return BROKEN_PIPE_EXIT


def _parse_and_run(argv: list[str] | None) -> int:
    parser = build_parser()
    argv = _attach_negative_values(parser, sys.argv[1:] if argv is None else list(argv))
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            _command_parser(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # --help, --version and usage errors (argparse exits 2 for those)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else USER_ERROR_EXIT)
    reported = user_errors()
    try:
        code = int(args.handler(args) or 0)
        _flush_stdout()
        return code
    except reported as e:
        return _report(args.command, str(e))
    except BrokenPipeError:
        raise
    except SYSTEM_ERRORS as e:
        return _report(args.command, _system_error_text(e))


def _attach_negative_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`--split -0.1,0.6,0.5` as `--split=-0.1,0.6,0.5`: argparse takes a value that starts with a minus sign for
    an option unless it is one plain number, and then says only "expected one argument"; joined, the value reaches
    its own check, whose message says what is wrong with it. Only after an option of the command given that takes
    a value, and never past a bare `--`."""
    commands = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})
    command = next((commands[token] for token in argv if token in commands), None)
    takes_value = {option for action in (command or parser)._actions if action.nargs != 0
                   for option in action.option_strings if option.startswith("--")}
    out: list[str] = []
    for i, token in enumerate(argv):
        if token == "--":
            return out + argv[i:]
        if (out and out[-1] in takes_value and len(token) > 1 and token[0] == "-"
                and (token[1].isdigit() or token[1] == ".")):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub)command that was run, so a stray argument is refused with that command's usage,
    not the top-level one's."""
    while True:
        action = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = getattr(args, action.dest, None) if action is not None else None
        if chosen not in (action.choices if action is not None else {}):
            return parser
        parser = action.choices[chosen]


def _flush_stdout() -> None:
    """Write out what is buffered now, not at exit, where a failure (a closed pipe, a full disk) is a traceback."""
    if sys.stdout is not None:
        sys.stdout.flush()


def _report(command: str, message: str) -> int:
    print(f"faceparse {command}: error: {message}", file=sys.stderr)
    return USER_ERROR_EXIT


def _system_error_text(error: BaseException) -> str:
    """`path: reason` for a file error (the errno number means nothing to a user), else the error's own text."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{os.fsdecode(error.filename)}: {error.strerror}"
    if type(error).__module__ == "sqlite3" and "disk is full" in str(error):
        return "the disk holding the project is full: free some space and run the command again"
    return str(error) or type(error).__name__


def _discard_stdout() -> None:
    """Point stdout at devnull, so that Python's last flush at exit does not fail again on the closed pipe (the
    recipe of the Python documentation's note on SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (AttributeError, ValueError, OSError):  # no real stdout file (None, or replaced in-process)
        pass


if __name__ == "__main__":
    # Run as `python -m`, this file is `__main__`, a second copy of the module whose CommandError the commands do
    # not raise; the package's own module catches theirs.
    from faceparse.app.cli import main as package_main

    sys.exit(package_main())
