"""`faceparse export` and `faceparse import`: datasets out of and labels into a project, from the command line."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from faceparse.app.argtypes import int_at_least, path_text
from faceparse.app.cli import CommandError
from faceparse.core.export import (
    DEFAULT_SPLIT,
    SELECTIONS,
    DestinationNotEmpty,
    ExportCancelled,
    ExportError,
    ExportResult,
    export_dataset,
    parse_split,
)
from faceparse.core.formats import format_names
from faceparse.core.importer import (
    KINDS,
    ImportCancelled,
    ImportFailed,
    ImportRefused,
    ImportReport,
    ImportStopped,
    import_dataset,
)
from faceparse.core.store import ProjectStore

INTERRUPTED_EXIT = 130


class _ProgressLine:
    """`label done/total` rewritten in place on a terminal's stderr (nothing when stderr is not a terminal). Its line
    is ended when the count reaches the total or by `end_line`, so whatever is printed next starts a line of its own."""

    def __init__(self, label: str):
        self.label = label
        self.enabled = sys.stderr.isatty()
        self.width = 0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        text = f"{self.label} {done:,}/{total:,}"
        print(f"\r{text.ljust(self.width)}", end="", file=sys.stderr, flush=True)
        self.width = len(text)
        if done >= total:
            self.end_line()

    def end_line(self) -> None:
        if self.width:
            print(file=sys.stderr, flush=True)
            self.width = 0

    def note(self, text: str) -> None:
        self.end_line()
        print(text, file=sys.stderr, flush=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    formats = format_names()
    p = subparsers.add_parser("export", help="write the project's masks as a dataset",
                              description="Export images and masks of the project in FOLDER as a dataset in one "
                                          "of the common layouts, with a train/val/test split and a dataset card. "
                                          "The dataset appears at DIR only when it is complete.")
    p.add_argument("folder", metavar="FOLDER", type=path_text)
    p.add_argument("--format", "-f", required=True, choices=formats, type=str.lower, metavar="FORMAT",
                   help=f"layout: {', '.join(formats)}")
    p.add_argument("--out", "-o", required=True, metavar="DIR", type=path_text, help="destination folder (must not exist or be empty)")
    p.add_argument("--split", default=",".join(f"{f:g}" for f in DEFAULT_SPLIT), metavar="TRAIN,VAL,TEST",
                   help="fractions of the images in each split (default %(default)s)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the split (default %(default)s)")
    p.add_argument("--only", choices=tuple(SELECTIONS), default="corrected",
                   help="reviewed: reviewed images; corrected (default): corrected and reviewed; "
                        "all: also images with only a prediction")
    p.add_argument("--schema", metavar="NAME|FILE.json",
                   help="target schema, when the project's schema declares a mapping to it (e.g. lapa); by default "
                        "the project's, except for lapa, which is written in LaPa's own classes, and celebamask-hq, which "
                        "is written in CelebAMask-HQ's classes when the project's schema maps to them")
    p.add_argument("--overwrite", action="store_true",
                   help="replace DIR if it holds an earlier export (a folder without its dataset.json is never "
                        "replaced, nor one holding files or folders the export did not write)")
    p.set_defaults(handler=run_export)

    p = subparsers.add_parser("import", help="bring a dataset's labels into the project",
                              description="Import the labels of the dataset in SOURCE into the project in FOLDER. "
                                          "Every label is checked first; any problem imports nothing and lists "
                                          "all problems.")
    p.add_argument("folder", metavar="FOLDER", type=path_text)
    p.add_argument("source", metavar="SOURCE", type=path_text, help="the dataset folder (or, for COCO, a JSON file)")
    p.add_argument("--format", "-f", required=True, choices=formats, type=str.lower, metavar="FORMAT",
                   help=f"layout: {', '.join(formats)}")
    p.add_argument("--as", dest="kind", choices=KINDS, default="corrected",
                   help="store the masks as corrections (default) or as predictions")
    p.add_argument("--source-schema", metavar="NAME|FILE.json",
                   help="what the dataset's classes are, when it has no schema.json (index masks, mappings)")
    p.add_argument("--ignore-unmatched", action="store_true",
                   help="skip labels whose image is not in the project instead of refusing the import")
    p.add_argument("--overwrite", action="store_true", help="replace corrected masks that differ")
    p.add_argument("--scale-masks", action="store_true",
                   help="resize masks with the image's aspect ratio but another size (nearest neighbour)")
    p.add_argument("--dry-run", action="store_true", help="check everything, write nothing")
    p.set_defaults(handler=run_import)


def run_export(args: argparse.Namespace) -> int:
    try:
        split = parse_split(args.split)
    except ValueError as e:
        raise CommandError(str(e)) from None
    progress = _ProgressLine("Exporting")
    with ProjectStore.open_for_reading(args.folder) as store:
        try:
            result = export_dataset(store, args.out, args.format, only=args.only, split=split, seed=args.seed,
                                    target_schema=args.schema, overwrite=args.overwrite,
                                    progress=progress, cancel=threading.Event())
        except DestinationNotEmpty as e:
            raise CommandError(f"{e} with --overwrite") from None
        except (ExportError, ExportCancelled) as e:
            raise CommandError(str(e)) from None
        finally:
            progress.end_line()
    splits = ", ".join(f"{name} {n:,}" for name, n in result.splits.items())
    images = f"{result.count:,} image{'s' if result.count != 1 else ''}"
    print(f"Exported {images} ({splits}) as {result.format} to {result.out_dir} in {result.seconds:.1f} s")
    approved = f", {result.approved_as_predicted:,} checked and left as predicted" if result.approved_as_predicted else ""
    imported = f", {result.imported:,} imported and not edited here" if result.imported else ""
    print(f"{_schema_line(result)}; {result.corrected_by_hand:,} corrected by hand{approved}{imported}")
    for line in result.skipped:
        print(f"  left out {line}")
    return 0


def _schema_line(result: ExportResult) -> str:
    text = result.schema_summary()
    if result.schema_by_default and result.source_schema is not None:
        text += f"; --schema {result.source_schema.name} keeps the project's classes"
    return text[0].upper() + text[1:]


@contextmanager
def _import_interrupts(progress: _ProgressLine, cancel: threading.Event, writing: threading.Event,
                       stop: threading.Event) -> Iterator[None]:
    """Ctrl-C while the labels are checked stops the check (nothing is imported). Once masks are being written,
    the first Ctrl-C only says the import will finish, so the project never holds part of one unknowingly; the
    second stops it after the current mask (the error then says how many were imported), a third aborts. A
    request to terminate stops at once where that is safe: the check, or the writing after the current mask."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    presses = 0

    def handler(signum, frame):
        nonlocal presses
        presses += 1
        if not writing.is_set():
            if cancel.is_set():
                raise KeyboardInterrupt
            cancel.set()
            progress.note("Ctrl-C: stopping the check; nothing will be imported")
        elif presses == 1:
            progress.note("Ctrl-C: the checked masks are being written; finishing so the import is complete "
                          "(Ctrl-C again to stop after the current mask)")
        elif not stop.is_set():
            stop.set()
            progress.note("Ctrl-C: stopping after the current mask; the import will be partial")
        else:
            raise KeyboardInterrupt

    def terminated(signum, frame):
        """Asked to end (a shutdown, `kill`): no time to finish, so the check stops, or the writing stops after
        the current mask with its record written, as a second Ctrl-C does; never in the middle of a mask."""
        if not writing.is_set():
            cancel.set()
        stop.set()
        progress.note("terminated: stopping after the current mask")

    previous_term = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)


def _nothing_matched(report: ImportReport) -> bool:
    """Every label skipped for want of its image: the wrong project or the wrong source, most likely, which a
    script must not take for a successful import."""
    return bool(report.skipped) and not (report.planned or report.unchanged or report.imported)


def _nothing_matched_message(report: ImportReport, project: Path) -> str:
    shown = "\n".join(f"  - {line}" for line in report.skipped[:3])
    more = f"\n  ... and {len(report.skipped) - 3:,} more" if len(report.skipped) > 3 else ""
    return (f"none of the {len(report.skipped):,} labels in {report.source} matches an image of the project "
            f"{project}, so nothing was imported; check that they belong together (--ignore-unmatched skips "
            f"only the labels that do not match when others do):\n{shown}{more}")


def run_import(args: argparse.Namespace) -> int:
    progress = _ProgressLine("Checking" if args.dry_run else "Importing")
    cancel, writing, stop = threading.Event(), threading.Event(), threading.Event()
    opened = ProjectStore.open_for_reading(args.folder) if args.dry_run else ProjectStore.open(args.folder)
    with opened as store:
        try:
            with _import_interrupts(progress, cancel, writing, stop):
                report = import_dataset(store, args.source, args.format, kind=args.kind,
                                        source_schema=args.source_schema, ignore_unmatched=args.ignore_unmatched,
                                        overwrite=args.overwrite, scale_masks=args.scale_masks,
                                        dry_run=args.dry_run, progress=progress, cancel=cancel, writing=writing,
                                        stop=stop)
        except (ImportCancelled, ImportStopped) as e:
            progress.note(f"faceparse import: {e}")
            return INTERRUPTED_EXIT
        except (ImportRefused, ImportFailed) as e:
            raise CommandError(str(e)) from None
        finally:
            progress.end_line()
        if _nothing_matched(report):
            raise CommandError(_nothing_matched_message(report, store.root))
    summary = report.summary()
    print(summary[0].upper() + summary[1:])
    for source_name, project_name in sorted(report.class_map.items()):
        if source_name != project_name:
            print(f"  class {source_name} -> {project_name}")
    for line in report.notes:
        print(f"  note: {line}")
    for line in report.skipped[:20]:
        print(f"  skipped {line}")
    if len(report.skipped) > 20:
        print(f"  ... and {len(report.skipped) - 20} more skipped")
    return 0
