"""`faceparse prelabel` and `faceparse predict`: masks from a model, for a project or for loose files.

`prelabel FOLDER` runs the same pre-label job as the studio (core/prelabel.py) on a project, creating and scanning
it first if needed, with a progress bar; Ctrl-C stops it after the current batch and a later run resumes.
`predict` needs no project: each input image becomes an index PNG (`<image stem>.png`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from faceparse.app.argtypes import int_at_least, path_text
from faceparse.app.cli import CommandError, print_scan_notes, progress_bar
from faceparse.core.faces import FACES, WHOLE_IMAGE
from faceparse.core.imageio import IMAGE_EXTENSIONS, save_mask
from faceparse.core.model_resolver import ModelNotFoundError, find_model, task_for_schema
from faceparse.core.predictor import DEVICES, ModelError, Predictor, read_model_info
from faceparse.core.schemas import LabelSchema, get_schema
from faceparse.core.store import ProjectStore, natural_sort_key
from faceparse.core.wording import counted

if TYPE_CHECKING:
    from faceparse.core.prelabel import PrelabelJob, PrelabelResult

MODE_CHOICES = {"faces": FACES, "whole-image": WHOLE_IMAGE}
PRELABEL_TTA_HELP = ("also predict each face mirrored and average (twice the time); the choice is remembered for "
                     "the project (default: the project's, else off)")
PREDICT_TTA_HELP = "also predict each face mirrored and average (twice the time; default off)"


def register(subparsers: argparse._SubParsersAction) -> None:
    register_prelabel(subparsers)
    register_predict(subparsers)


PROJECT_MODEL_HELP = ("an .onnx file, a model folder, a project model version (v0003), starter, active, or a task "
                      "(parser, mask); default: the project's active model, else the starter model")
FILE_MODEL_HELP = ("an .onnx file, a model folder, starter, or a task (parser, mask); default: the starter model, or "
                   "when the one input is a project's folder, that project's active model (and its versions, "
                   "v0003, can be named)")


def _model_options(p: argparse.ArgumentParser, tta_help: str, model_help: str) -> None:
    p.add_argument("--model", metavar="NAME|PATH", help=model_help)
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="where the model runs (default auto: CUDA if ONNX Runtime has it, else CPU)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None, help=tta_help)
    p.add_argument("--batch-size", type=int_at_least(1), metavar="N", help="faces per model run")
    p.add_argument("--threads", type=int_at_least(1), metavar="N",
                   help="CPU threads for the model (default: all cores)")


class _ProgressBar:
    """A tqdm bar fed by progress reports (created on the first report, when the total is known)."""

    def __init__(self, unit: str = "img"):
        self.unit = unit
        self.bar = None

    def __call__(self, progress) -> None:
        if self.bar is None:
            self.bar = progress_bar(progress.total, unit=self.unit)
        self.bar.set_postfix_str(f"{progress.images_per_second:.1f} img/s" +
                                 (f", {progress.failed} failed" if progress.failed else ""), refresh=False)
        self.bar.update(progress.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def _interrupt_sets(event: threading.Event) -> Iterator[None]:
    """Ctrl-C asks the job to stop after the current batch instead of killing it mid-write."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        print("\nstopping after the current batch (Ctrl-C again to abort)", file=sys.stderr)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --- prelabel --------------------------------------------------------------------------------------------------------

def register_prelabel(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prelabel", help="predict a mask for every image of a project that needs one",
        description="Pre-label the images in FOLDER (creating and scanning the project if needed). Corrected and "
                    "reviewed images are never touched; images already predicted by the same model are skipped, "
                    "so an interrupted run resumes where it stopped, and predictions brought in with "
                    "'import --as predicted' are kept. Unreadable images are reported and skipped.",
        epilog="Exit status: 0 when every image that needed a mask got one; 1 when some could not be pre-labeled "
               "(they are listed) or the run was stopped; 2 for a mistake in the command, or while another "
               "pre-labeling run is going on in the project (one run at a time; 'faceparse jobs FOLDER' shows it).")
    p.add_argument("folder", metavar="FOLDER", type=path_text)
    _model_options(p, PRELABEL_TTA_HELP, PROJECT_MODEL_HELP)
    p.add_argument("--mode", choices=("auto", *MODE_CHOICES),
                   help="faces: detect and parse each face; whole-image: the images are aligned face crops; "
                        "auto: suggest from a sample. Remembered for the project (default: its choice, else auto)")
    p.add_argument("--redo", action="store_true",
                   help="predict again the images this model already predicted with these settings (a changed "
                        "--mode or --tta predicts again without it) and replace the predictions brought in with "
                        "'import --as predicted'; corrected and reviewed images are still kept")
    p.set_defaults(handler=run_prelabel)


def _open_project(folder: str, model: str | None) -> ProjectStore:
    """The project in `folder`; a new one (or one whose creation was interrupted) takes the label schema of the
    model that will label it."""
    if ProjectStore.is_project(folder) and ProjectStore._is_complete(Path(folder).expanduser()):
        return ProjectStore.open(folder)
    try:
        info = read_model_info(find_model(None, model).path)
    except (ModelNotFoundError, ModelError) as error:
        raise CommandError(str(error)) from None
    try:
        schema = get_schema(info.schema_name)
    except KeyError:
        schema = None
    if schema is None or tuple(schema.classes) != info.classes:
        raise CommandError(f"the model's label schema {info.schema_name!r} is not a built-in one; create the "
                           f"project first with: faceparse scan {folder} --schema SCHEMA.json")
    store = ProjectStore.create(folder, schema)
    print(f"Created project {store.root} (schema {store.schema.name})")
    return store


def run_prelabel(args: argparse.Namespace) -> int:
    """Exit status 0 when every image that needed a mask got one, 1 when some could not be pre-labeled (unreadable
    ones included, whether this run or an earlier scan found them) or the run was stopped, as `predict` does; a project busy with another run is refused (2) before the scan."""
    from faceparse.core.prelabel import SUGGESTED_MODE, PrelabelJob

    with _open_project(args.folder, args.model) as store:
        job = PrelabelJob(store, args.model, device=args.device, tta=args.tta,
                          mode=SUGGESTED_MODE if args.mode == "auto" else MODE_CHOICES.get(args.mode),
                          batch_size=args.batch_size, threads=args.threads, redo=args.redo)
        with job.exclusive():
            scan = store.scan()
            print(f"Scanned {scan.total:,} image{'' if scan.total == 1 else 's'} ({scan.added:,} new, "
                  f"{scan.changed:,} changed)")
            print_scan_notes(scan)
            result = _run_job(job)
    _print_summary(result)
    if result.state == "cancelled":
        done = result.predicted + len(result.failed)
        again = ("run it again without --redo to go on only with the images this model has not predicted with these "
                 "settings, or with --redo to predict every image again") if args.redo else \
            "run the command again to continue"
        print(f"Stopped after {done:,} of {result.total:,} images; {again}")
        return 1
    return 1 if result.state == "failed" or result.failed or result.unreadable else 0


def _run_job(job: PrelabelJob) -> PrelabelResult:
    """Run the job with a progress bar, Ctrl-C asking it to stop; what keeps it from starting is a CommandError."""
    from faceparse.core.prelabel import PrelabelStopped

    cancel = threading.Event()
    bar = _ProgressBar()
    try:
        with _interrupt_sets(cancel):
            return job.run(bar, cancel)
    except (ModelNotFoundError, ModelError) as error:
        raise CommandError(str(error)) from None
    except PrelabelStopped as stopped:  # the run's own outcome (exit code 1), not a mistake in the command
        bar.close()
        again = "running it again without --redo goes on from them" if job.redo else \
            "running the command again goes on from them"
        print(f"faceparse prelabel: {stopped}; the masks saved before it are kept, and {again}", file=sys.stderr)
        return stopped.result
    finally:
        bar.close()


def _print_summary(result: PrelabelResult) -> None:
    """What a run did: the model and where it ran, the counts, and each image it could not pre-label."""
    for notice in result.notices:
        print(f"note: {notice}", file=sys.stderr)
    where = "GPU (CUDA)" if result.provider == "CUDAExecutionProvider" else "CPU"
    tta = ", flip TTA" if result.tta else ""
    print(f"Model {result.model_id} ({result.model_path}) on {where}, mode {result.mode.replace('_', ' ')}{tta}")
    if result.total:
        print(f"Predicted {result.predicted:,} of {result.total:,} image{'' if result.total == 1 else 's'} in "
              f"{result.seconds:.1f} s "
              f"({result.images_per_second:.1f} images/s)")
    else:
        print("Nothing to predict")
    kept = [f"{result.skipped_current:,} already current", f"{result.skipped_checked:,} corrected/reviewed kept"]
    if result.skipped_imported:
        kept.append(f"{result.skipped_imported:,} imported kept")
    if result.skipped_unreadable:
        kept.append(f"{result.skipped_unreadable:,} unreadable skipped")
    print("Skipped " + ", ".join(kept))
    if result.skipped_current:
        one = result.skipped_current == 1
        print(f"{'The image' if one else f'The {result.skipped_current:,} images'} this model already predicted "
              f"with these settings kept {'its mask' if one else 'their masks'}; add --redo to predict "
              f"{'it' if one else 'them'} again")
    if result.skipped_imported:
        one = result.skipped_imported == 1
        print(f"{result.skipped_imported:,} imported prediction{'' if one else 's'} kept; --redo replaces "
              f"{'it' if one else 'them'}")
    if result.whole_image_fallbacks:
        one = result.whole_image_fallbacks == 1
        print(f"No face found in {counted(result.whole_image_fallbacks, 'image')}; "
              f"{'it was' if one else 'they were'} parsed whole")
    if result.failed:
        print(f"Could not pre-label {len(result.failed):,} image{'' if len(result.failed) == 1 else 's'}:")
        for relpath, reason in result.failed[:20]:
            print(f"  {relpath}: {reason}")
        if len(result.failed) > 20:
            print(f"  … and {len(result.failed) - 20:,} more (see the job log)")
    if result.unreadable:
        count = len(result.unreadable)
        print(f"Could not read {count:,} image{'' if count == 1 else 's'} (as when the folder was scanned):")
        for relpath, reason in result.unreadable[:20]:
            print(f"  {relpath}: {reason}")
        if count > 20:
            print(f"  … and {count - 20:,} more (faceparse info names them)")


# --- predict ---------------------------------------------------------------------------------------------------------

def register_predict(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict", help="predict index masks for images, without a project",
        description="Predict a mask for each IMAGE (or each image in a FOLDER). One image in: --out is the PNG "
                    "to write (or a folder). Several images or a folder in: --out is a folder that receives "
                    "<image stem>.png index masks; with --recursive, in the same subfolders as the images. The "
                    "masks hold the model's own classes (the starter parser's 19 CelebAMask-HQ classes), not a "
                    "project's: 'prelabel' is what maps them to a project's classes and stores them in it.")
    p.add_argument("inputs", nargs="+", metavar="IMAGE|FOLDER", type=path_text)
    p.add_argument("--out", required=True, metavar="PATH", type=path_text,
                   help="output PNG (one image) or folder (several images, or a name ending in /)")
    _model_options(p, PREDICT_TTA_HELP, FILE_MODEL_HELP)
    p.add_argument("--whole-image", action="store_true",
                   help="the images are aligned face crops: parse each whole, without face detection")
    p.add_argument("--recursive", "-r", action="store_true",
                   help="also the images in a FOLDER's subfolders (hidden ones skipped); the masks keep the layout")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files of the same names already in the --out folder (without it, predict refuses "
                        "to write over them and names them)")
    p.set_defaults(handler=run_predict)


def _images_in(folder: Path, recursive: bool, skip: Path | None = None) -> list[Path]:
    """The image files of a folder in natural name order; with `recursive`, of its subfolders too (hidden files
    and folders, such as a project's own, are skipped, links to folders are not followed, and neither is `skip`,
    the output folder, whose masks of an earlier run are not photos)."""
    found: list[Path] = []
    for entry in sorted(folder.iterdir(), key=lambda p: natural_sort_key(p.name)):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in IMAGE_EXTENSIONS:
            found.append(entry)
        elif recursive and entry.is_dir() and not entry.is_symlink() and (skip is None or entry.resolve() != skip):
            found.extend(_images_in(entry, recursive, skip))
    return found


def _collect_inputs(inputs: list[str], recursive: bool = False, out: Path | None = None
                    ) -> tuple[list[Path], list[Path], bool]:
    """The image files to predict, the name of each one's mask relative to an output folder, and whether the
    output is a folder."""
    files: list[Path] = []
    names: list[Path] = []
    folder_given = False
    for text in inputs:
        path = Path(text).expanduser()
        if path.is_dir():
            folder_given = True
            found = _images_in(path, recursive, out.resolve() if out is not None else None)
            if not found:
                hint = "" if recursive or not _images_in(path, True) else "; its subfolders hold some: add --recursive"
                raise CommandError(f"no images in {path} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}){hint}")
            files.extend(found)
            names.extend(f.relative_to(path).with_suffix(".png") for f in found)
        elif path.is_file():
            files.append(path)
            names.append(Path(f"{path.stem}.png"))
        else:
            raise CommandError(f"no such image or folder: {path}")
    return files, names, folder_given or len(files) > 1


def _outputs(files: list[Path], out: Path, to_folder: bool, folder_meant: bool = False,
             names: list[Path] | None = None, overwrite: bool = False) -> list[Path]:
    """Where each mask goes: `out` itself for one image, else a PNG per image in the folder `out` (a name ending
    in a slash is a folder, made if needed), at `names` (relative; the image's stem by default). Files already in
    the folder are refused unless `overwrite`: their names come from the images, not from the user. A folder
    input that holds one image may name its mask as a .png file."""
    one_file = len(files) == 1 and out.suffix.lower() == ".png"  # a folder holding one photo, to a named mask
    if (not to_folder or one_file) and not out.is_dir() and not folder_meant:
        if out.suffix.lower() != ".png":
            raise CommandError(f"--out {out} must be a .png file (or a folder, written with a / at the end) for a "
                               "single image")
        targets = [out]
        into_folder = False
    else:
        into_folder = True
        if out.exists() and not out.is_dir():
            raise CommandError(f"--out {out} is a file; several images need an output folder")
        if not out.exists() and out.suffix.lower() == ".png" and not folder_meant:
            raise CommandError(f"--out {out} names a PNG file, but {len(files):,} images need an output folder")
        targets = [out / name for name in (names or [Path(f"{f.stem}.png") for f in files])]
        seen: dict[Path, Path] = {}
        for source, target in zip(files, targets, strict=True):
            if target in seen:
                raise CommandError(f"{seen[target].name} and {source.name} would both be written to {target}; "
                                   "predict them into separate folders")
            seen[target] = source
    sources = {f.resolve() for f in files}
    for target in targets:
        if target.resolve() in sources:
            raise CommandError(f"refusing to overwrite the input image {target} with its mask; choose another --out")
    _refuse_project_folder(out, targets[0].parent)
    if into_folder and not overwrite:
        _refuse_existing(out, targets)
    return targets


def _refuse_project_folder(out: Path, folder: Path) -> None:
    """Masks written into a project's image folder would be taken for photos by its next scan."""
    for candidate in (folder.resolve(), *folder.resolve().parents):
        if ProjectStore.is_project(candidate):
            raise CommandError(f"--out {out} is inside the project {candidate}; its next scan would take the masks "
                               "for new photos. Choose a folder outside it")


EXISTING_NAMED = 5
"""How many of the files already in the output folder a refusal names before it counts the rest."""


def _refuse_existing(out: Path, targets: list[Path]) -> None:
    """Files in the output folder that the masks would replace, a photo kept there among them perhaps."""
    existing = [target for target in targets if target.exists() or target.is_symlink()]
    if not existing:
        return
    named = ", ".join(str(target) for target in existing[:EXISTING_NAMED])
    more = f" and {len(existing) - EXISTING_NAMED:,} more" if len(existing) > EXISTING_NAMED else ""
    raise CommandError(f"--out {out} already holds {named}{more}; choose another folder, or add --overwrite to "
                       "replace them")


def _check_writable(targets: list[Path]) -> list[Path]:
    """Make the output folders and make sure masks can be written in them, before the model loads and runs.
    Returns the folders made, deepest first, so a run that stops before writing can take them back."""
    from faceparse.core.atomic import folder_write_problem

    made: list[Path] = []
    try:
        for folder in sorted({target.parent for target in targets}):
            made += [p for p in (folder, *folder.parents) if not p.exists() and p not in made]
            problem = folder_write_problem(folder, "output folder")
            if problem is not None:
                raise CommandError(problem)
    except CommandError:
        _remove_empty(made)
        raise
    return sorted(made, key=lambda p: len(p.parts), reverse=True)


def _remove_empty(folders: list[Path]) -> None:
    """Take back output folders a run made and left empty."""
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _write_failure(error: OSError, target: Path, written: int) -> str:
    """A failed mask write in words: the file it was meant for (not the temporary one it was written to first),
    the system's reason, and what was written before it."""
    reason = f"cannot write the mask {target}: {error.strerror or error}"
    if written == 0:
        return reason
    return f"{reason}; the {written:,} written before it {'is' if written == 1 else 'are'} kept"


def _project_of(inputs: list[str]) -> ProjectStore | None:
    """A single project folder given as input lends its active model."""
    if len(inputs) == 1 and Path(inputs[0]).is_dir() and ProjectStore.is_project(inputs[0]):
        return ProjectStore.open_for_reading(inputs[0])
    return None


def run_predict(args: argparse.Namespace) -> int:
    from faceparse.core.framing import Framing
    from faceparse.core.prediction_pipeline import PredictionPipeline
    from faceparse.core.prelabel import PrelabelProgress

    files, names, to_folder = _collect_inputs(args.inputs, args.recursive, Path(args.out).expanduser())
    targets = _outputs(files, Path(args.out).expanduser(), to_folder,
                       folder_meant=args.out.endswith(("/", os.sep)), names=names, overwrite=args.overwrite)
    made = _check_writable(targets)
    store = _project_of(args.inputs)
    try:
        resolved = find_model(store, args.model, "parser" if store is None else task_for_schema(store.schema))
        predictor = Predictor(resolved.path, device=args.device, threads=args.threads, batch_size=args.batch_size,
                              tta=bool(args.tta), confidence=False, probabilities=False)
    except (ModelNotFoundError, ModelError) as error:
        _remove_empty(made)
        raise CommandError(str(error)) from None
    finally:
        if store is not None:
            store.close()
    if predictor.notice:
        print(f"note: {predictor.notice}", file=sys.stderr)
    info = predictor.info
    try:
        palette: LabelSchema | None = get_schema(info.schema_name)
        if tuple(palette.classes) != info.classes:
            palette = None
    except KeyError:
        palette = None
    framing = Framing(WHOLE_IMAGE if args.whole_image else FACES)
    failed: list[tuple[Path, str]] = []
    written = [0]

    def on_result(i: int, prediction) -> None:
        try:
            save_mask(targets[i], prediction.mask, palette)
        except OSError as error:
            raise CommandError(_write_failure(error, targets[i], written[0])) from None
        written[0] += 1

    def on_error(i: int, reason: str, lasting: bool = True) -> None:
        failed.append((files[i], reason))

    bar = _ProgressBar() if len(files) > 1 else None
    cancel = threading.Event()
    started = time.perf_counter()

    def report() -> None:
        if bar is not None:
            done = written[0] + len(failed)
            elapsed = time.perf_counter() - started
            bar(PrelabelProgress(done, len(files), len(failed), done / elapsed if elapsed else 0.0, None, elapsed))

    pipeline = PredictionPipeline(predictor, framing)
    try:
        with _interrupt_sets(cancel):
            pipeline.run(enumerate(files), on_result, on_error, cancel.is_set, report)
        report()
    finally:
        if bar is not None:
            bar.close()
    for path, reason in failed:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    where = targets[0] if not to_folder else Path(args.out)
    wrote = f"Wrote {written[0]:,} mask{'s' if written[0] != 1 else ''} to {where}" if written[0] else \
        f"No mask was written to {where}"
    print(f"{wrote} (model {resolved.model_id}, {predictor.describe()})")
    if cancel.is_set() and written[0] + len(failed) < len(files):
        print(f"Stopped after {written[0] + len(failed):,} of {len(files):,} images", file=sys.stderr)
        return 1
    return 1 if failed else 0

