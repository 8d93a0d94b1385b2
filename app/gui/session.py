"""The image being annotated: its working mask, undo history and saving.

This is where "closing never loses an edit" is kept: a mask is saved when the annotator leaves the image, a short
while after the last edit, on demand, and when the window closes. Saves are snapshots written by the serial writer
(atomic, through `ProjectStore.save_corrected`), so the GUI never waits on the disk and writes land in order. The
undo stack's clean state is the one truth about unsaved work; the window title follows it.

A mask that cannot be read blocks opening the image instead of being replaced by an empty one, so a damaged file
is never silently overwritten.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter

import numpy as np
from faceparse.core.imageio import ImageLoadError
from faceparse.core.label_editor import DEFAULT_HISTORY_BYTES, Box, Edit, LabelEditor
from faceparse.core.store import ImageRecord, MaskError, ProjectError, ProjectStore, write_failure_text
from PySide6.QtCore import QObject, QTimer, Signal

from .canvas import Canvas
from .image_cache import PrefetchCache, Stamp, mask_stamps, read_bundle
from .image_histories import ImageHistories
from .undo import BoundedUndoStack, ReviewCommand, UnreviewCommand
from .workers import SerialWriter

AUTOSAVE_MS = 1500


class AnnotationSession(QObject):
    loaded = Signal(object)  # ImageRecord
    unloaded = Signal()  # the chosen image could not be opened; nothing is open now
    modified_changed = Signal(bool)
    record_updated = Signal(object)  # ImageRecord, after a write landed
    mask_unreadable = Signal(int, str)  # image id, why its mask could not be opened
    message = Signal(str)
    refused = Signal(str)  # a key that cannot apply here (a slip): said in words, nothing is wrong
    error = Signal(str)

    def __init__(self, store: ProjectStore, canvas: Canvas, writer: SerialWriter,
                 autosave_ms: int = AUTOSAVE_MS, history_bytes: int = DEFAULT_HISTORY_BYTES,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.store = store
        self.canvas = canvas
        self.writer = writer
        self.histories = ImageHistories(history_bytes, parent=self)
        self.histories.group.cleanChanged.connect(lambda clean: self.modified_changed.emit(not clean))
        self.record: ImageRecord | None = None
        self.editor: LabelEditor | None = None
        self.prediction: np.ndarray | None = None
        self._untouched: np.ndarray | None = None
        self._reviewed = False
        """Whether the open image is reviewed, as R and its undo leave it (the record hears later, from the writer)."""
        self.paint_over: set[int] | None = None
        self._closed = False
        self.prefetch: PrefetchCache | None = None
        self._pending_writes: Counter[int] = Counter()
        self._pending_lock = threading.Lock()
        self._unsaved: dict[int, tuple[np.ndarray, str, str]] = {}
        """Images whose last write failed: (their mask, why, their name)."""
        self._reviews_unsaved: dict[int, np.ndarray] = {}
        """Images whose review (R) failed with their mask's save, and the mask approved: a later write of that very
        mask (Ctrl+S, closing) marks them reviewed too, so the approval is not lost with the failure."""
        self._photos_seen: dict[int, tuple[int, int] | None] = {}
        """Each opened image's photo file as it was read (see `ImageBundle.photo_seen`)."""
        self._corrected_seen: dict[int, Stamp] = {}
        """Each opened image's corrected mask file as last read or written here (None: there was none), to tell
        a mask another program wrote since then."""
        self._autosave = QTimer(self)
        self._autosave.setSingleShot(True)
        self._autosave.setInterval(autosave_ms)
        self._autosave.timeout.connect(self.save)
        canvas.edit_committed.connect(self._on_edit)
        canvas.message.connect(self.message)

    @property
    def undo_stack(self) -> BoundedUndoStack:
        """The open image's undo history (see `ImageHistories`)."""
        return self.histories.active

    @property
    def image_id(self) -> int | None:
        return None if self.record is None else self.record.id

    @property
    def modified(self) -> bool:
        return self.editor is not None and not self.undo_stack.isClean()

    # --- opening -----------------------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Read the open image's masks again from the project (they were changed behind the editor's back, e.g. by
        an import); refused while the editor holds unsaved strokes, which must not be thrown away."""
        if self.image_id is None or self.modified:
            return False
        image_id = self.image_id
        if self.editor is not None:  # its undo history stays if the mask read back is the one it undoes from
            self.histories.park(image_id, self.editor.mask, self._untouched)
        self.record = None
        return self.load(image_id)

    def load(self, image_id: int) -> bool:
        """Leave the current image (saving it) and open another; False (and an error signal) if it cannot open."""
        if image_id == self.image_id:
            return True
        self.canvas.tool.commit_held()
        if getattr(self.canvas.tool, "points", None) and self.record is not None:
            self.message.emit(f"the polygon left open on {self.record.name} was not filled: close a polygon "
                              "(Enter) before moving on")
        self.save()
        if self.record is not None and self.editor is not None:
            self.histories.park(self.record.id, self.editor.mask, self._untouched)
        with self._pending_lock:
            unsaved = self._pending_writes[image_id] > 0
        if unsaved:
            self.writer.wait()
        try:
            bundle = self.prefetch.take(image_id) if self.prefetch is not None else None
            if bundle is None:
                bundle = read_bundle(self.store, image_id)
        except ImageLoadError as e:
            broken = self.store.note_load_error(image_id, e)
            if broken is not None:
                self.record_updated.emit(broken)
            return self._open_failed(str(e))
        except MaskError as e:
            self.mask_unreadable.emit(image_id, str(e))
            return self._open_failed(str(e))
        except ProjectError as e:
            return self._open_failed(str(e))
        record, shape, prediction = bundle.record, bundle.shape, bundle.predicted
        self._photos_seen[image_id] = bundle.photo_seen
        failed_save = self._unsaved_snapshot(image_id, bundle.shape)
        with self._pending_lock:
            if failed_save is None or image_id not in self._corrected_seen:  # else still unsaved over the other's
                self._corrected_seen[image_id] = bundle.stamps[0]
        stale_prediction = prediction is not None and prediction.shape != shape
        if stale_prediction:  # made on an earlier photo of another size: only a model's guess, nothing to keep
            prediction = None
        mask = bundle.corrected if bundle.corrected is not None else prediction
        if failed_save is not None:
            mask = failed_save
        elif mask is None:
            mask = np.zeros(shape, np.uint8)
        elif mask.shape != shape:
            problem = (f"the mask of {record.relpath} is {mask.shape[1]}x{mask.shape[0]} but the image is "
                       f"{shape[1]}x{shape[0]}; it was not opened so the mask is not overwritten")
            self.mask_unreadable.emit(image_id, problem)
            return self._open_failed(problem)
        editor = LabelEditor(mask, self.store.schema.num_classes)
        editor.set_paint_over(self.paint_over)
        resumed = self.histories.resume(image_id, mask)
        if failed_save is not None:
            self.undo_stack.resetClean()
        self.record, self.editor, self.prediction = record, editor, prediction
        self._reviewed = record.status == "reviewed"
        if resumed is not None:
            self._untouched = resumed.untouched
        else:
            self._untouched = mask.copy() if bundle.corrected is None and failed_save is None else None
        self.canvas.set_image(bundle.photo, editor, prediction)
        self.loaded.emit(record)
        if self.histories.dropped_because:
            self.message.emit(f"the undo history of {record.name} starts again: "
                              f"{self.histories.dropped_because}")
        if stale_prediction and bundle.corrected is None:
            self.message.emit(f"{record.name} changed size since it was pre-labeled, so its old prediction was set "
                              "aside: pre-label it again (Ctrl+L) or paint it")
        return True

    def _unsaved_snapshot(self, image_id: int, shape: tuple[int, int]) -> np.ndarray | None:
        """The mask whose write failed, if this image has one: it is newer than the file on disk, so the image
        opens on it (marked modified) and the next save of the image writes it instead of losing it."""
        with self._pending_lock:
            entry = self._unsaved.get(image_id)
        if entry is None or entry[0].shape != shape:
            return None
        return entry[0].copy()

    def set_paint_over(self, classes: set[int] | None) -> None:
        self.paint_over = None if classes is None else set(classes)
        if self.editor is not None:
            self.editor.set_paint_over(self.paint_over)

    # --- editing -----------------------------------------------------------------------------------------------

    def _on_edit(self, edit: Edit) -> None:
        self.undo_stack.push_edit(edit, self._apply, self._revert)
        self._autosave.start()

    def _apply(self, edit: Edit) -> None:
        if self.editor is not None:
            self.editor.apply(edit)
            self.canvas.mask_changed(edit.box)
            self._autosave.start()

    def _revert(self, edit: Edit) -> None:
        if self.editor is not None:
            self.editor.revert(edit)
            self.canvas.mask_changed(edit.box)
            self._autosave.start()

    def _show_working_mask(self) -> None:
        """Undo and redo change the working mask: it is brought back on screen first when the read-only
        prediction is shown, so the change is seen and never made blind."""
        if self.canvas.showing_prediction:
            self.canvas.show_prediction(False)
            self.message.emit("showing the working mask: undo and redo change it, not the prediction")

    def sketch_in_progress(self) -> bool:
        tool = self.canvas.tool
        return tool.holds_pixels() or bool(getattr(tool, "points", None))

    def can_undo(self) -> bool:
        """Whether Undo would do anything: take back an edit, or drop a stroke or outline still being drawn."""
        return self.editor is not None and (self.undo_stack.can_undo_edit() or self.sketch_in_progress())

    def can_redo(self) -> bool:
        return self.editor is not None and self.undo_stack.canRedo()

    def undo(self) -> None:
        """Take back the newest thing: a stroke or polygon still in progress, otherwise the last edit."""
        self._show_working_mask()
        in_progress = self.sketch_in_progress()
        self.canvas.tool.cancel()
        if in_progress:
            self.canvas.sketch_changed.emit()
            return
        approves = self.undo_stack.top_is_unreview()
        self.undo_stack.undo_edit()
        if approves:  # undoing U approved the mask on screen, saving it first: nothing is left unsaved
            self.undo_stack.setClean()

    def redo(self) -> None:
        if self.sketch_in_progress():
            self.refused.emit("a stroke or shape is still being drawn: finish it, or drop it (Esc), before redoing")
            return
        self._show_working_mask()
        self.canvas.tool.cancel()
        self.undo_stack.redo()
        if self.undo_stack.top_is_review():
            self.undo_stack.setClean()

    # --- saving ------------------------------------------------------------------------------------------------

    def save(self, force: bool = False, approving: bool = False, over_changes: bool = False) -> bool:
        """Queue a snapshot of the working mask for writing; True if one was queued.

        A stroke whose button is still held is not an edit yet: the save waits for it (the autosave is started
        again), so what is written is always a state of the undo history. Edits undone back to the mask the image
        opened with (before anyone corrected it) take the correction back instead of saving it: a slip that was
        autosaved and then undone must not leave a "corrected" image. A forced or approving save writes it, and so
        does one while an acceptance of the prediction is in effect (it is a correction whatever its pixels).
        `over_changes`: a save the person asked for, which writes over a mask another program saved meanwhile."""
        self._autosave.stop()
        if self.editor is None or self.record is None or not (force or self.modified) or self.store.read_only:
            return False
        if self.canvas.tool.holds_pixels():
            self._autosave.start()
            return False
        self.undo_stack.setClean()
        snapshot = self.editor.mask.copy()
        keep = force or approving or self._reviewed or self.undo_stack.accepted()
        if not keep and self._untouched is not None and np.array_equal(snapshot, self._untouched):
            self._queue_discard(self.record.id, snapshot)
        else:
            self._queue_write(self.record.id, snapshot, over_changes)
        return True

    def save_all(self) -> None:
        """Save the open image and try every earlier write that failed again (Ctrl+S after freeing space); the open
        image's save goes first, so a failed write of it is not tried again over its newer mask. Asked for, it
        writes over masks another program saved meanwhile (the person was told, see `_refuse_if_changed_elsewhere`)."""
        self.save(over_changes=True)
        self.retry_unsaved()

    def _queue_write(self, image_id: int, snapshot: np.ndarray, over_changes: bool = False) -> None:
        """`over_changes`: write even over a mask another program saved since the image opened (Ctrl+S after
        being told so)."""
        seen = self._photos_seen.get(image_id)
        reviewed_late: list[bool] = []
        name = self.unsaved_name(image_id)

        def save_and_review() -> None:
            if not over_changes:
                self._refuse_if_changed_elsewhere(image_id, name)
            self.store.save_corrected(image_id, snapshot, photo_seen=seen)
            self._note_own_write(image_id)
            with self._pending_lock:
                approved = self._reviews_unsaved.pop(image_id, None)
            if approved is not None and np.array_equal(approved, snapshot):
                self.store.set_status(image_id, "reviewed", photo_seen=seen)
                reviewed_late.append(True)

        def then(record: ImageRecord | None) -> None:
            if reviewed_late and record is not None and record.id == self.image_id and not self._closed:
                self._reviewed = True
                self.message.emit(f"{record.name} saved and marked reviewed")

        self._queue(image_id, snapshot, save_and_review, then)

    def _queue_discard(self, image_id: int, snapshot: np.ndarray) -> None:
        """Take back this visit's correction of an image that opened uncorrected; once it is the model's again, the
        editor shows the model's newest mask (see `_follow_prediction`)."""
        with self._pending_lock:
            self._reviews_unsaved.pop(image_id, None)
        name = self.unsaved_name(image_id)

        def discard() -> None:
            self._refuse_if_changed_elsewhere(image_id, name)
            self.store.discard_correction(image_id)
            self._note_own_write(image_id)

        self._queue(image_id, snapshot, discard, self._follow_if_predicted)

    def _queue(self, image_id: int, snapshot: np.ndarray, store_call, then=None) -> None:
        """Run `store_call` on the writer. A failure keeps `snapshot` (see `unsaved`) until a later write of
        that image succeeds."""
        with self._pending_lock:
            self._pending_writes[image_id] += 1

        name = self.unsaved_name(image_id)

        def write() -> ImageRecord | None:
            try:
                store_call()
            except (OSError, sqlite3.Error) as e:  # the disk's or the folder's trouble: said in words, no traceback
                reason = write_failure_text(e, self.store.root)
                with self._pending_lock:
                    self._unsaved[image_id] = (snapshot, reason, name)
                raise ProjectError(reason) from e
            except Exception as e:
                with self._pending_lock:
                    self._unsaved[image_id] = (snapshot, str(e) or type(e).__name__, name)
                raise
            else:
                with self._pending_lock:
                    self._unsaved.pop(image_id, None)
            finally:
                with self._pending_lock:
                    self._pending_writes[image_id] -= 1
            return self.store.get(image_id)

        def written(record: ImageRecord | None) -> None:
            self._written(record)
            if then is not None:
                then(record)

        self.writer.submit(write, written, lambda msg: self._save_failed(image_id, name, msg))

    def _refuse_if_changed_elsewhere(self, image_id: int, name: str) -> None:
        """Another program (an import, a second studio) wrote this image's mask since it was opened here: saving
        would replace that work without a word, so the edit is kept unsaved and the person decides."""
        with self._pending_lock:
            if image_id not in self._corrected_seen:
                return
            seen = self._corrected_seen[image_id]
        if mask_stamps(self.store, image_id)[0] != seen:
            raise ProjectError(f"{name} was changed by another program while it was open here, so your edit was "
                               "not saved over it by itself")

    def _note_own_write(self, image_id: int) -> None:
        with self._pending_lock:
            self._corrected_seen[image_id] = mask_stamps(self.store, image_id)[0]

    def unsaved(self) -> dict[int, str]:
        """Images whose last write failed, with the reason; their masks are kept for `retry_unsaved`."""
        with self._pending_lock:
            return {image_id: message for image_id, (_, message, _) in self._unsaved.items()}

    def retry_unsaved(self) -> None:
        """Write again the masks whose last write failed; an image with a write still queued is left to that write,
        which came later and holds its newer mask."""
        with self._pending_lock:
            failed = [(image_id, snapshot) for image_id, (snapshot, _, _) in self._unsaved.items()
                      if not self._pending_writes[image_id]]
        for image_id, snapshot in failed:
            self._queue_write(image_id, snapshot, over_changes=True)

    def discard_unsaved(self) -> None:
        with self._pending_lock:
            self._unsaved.clear()
            self._reviews_unsaved.clear()

    def _written(self, record: ImageRecord | None) -> None:
        if record is None or self._closed:
            return
        if self.record is not None and record.id == self.record.id:
            self.record = record
        self.record_updated.emit(record)

    def unsaved_name(self, image_id: int) -> str:
        """The image's name for a message about its save, taken when the save is queued (the project's index may
        be out of reach by the time the save fails)."""
        if self.record is not None and self.record.id == image_id:
            return self.record.relpath
        with self._pending_lock:
            entry = self._unsaved.get(image_id)
        return entry[2] if entry is not None else f"image {image_id}"

    def _save_failed(self, image_id: int, name: str, message: str) -> None:
        if self._closed:
            return
        if self.record is not None and self.record.id == image_id:
            self.undo_stack.resetClean()
        self.error.emit(f"could not save the mask of {name}: {message}. The edit is kept: it is saved again when "
                        "you save (Ctrl+S) or close the studio")

    def flush(self) -> dict[int, str]:
        """Save now, with every earlier write that failed tried again, and wait until every queued write has ended;
        returns `unsaved()` (empty when all are on disk). A stroke still held is committed first, so closing keeps
        it."""
        self.canvas.tool.commit_held()
        self.save_all()
        self.writer.wait()
        return self.unsaved()

    def _refused_read_only(self) -> bool:
        """Refuse a change of a read-only project with its reason; True when refused."""
        reason = self.store.read_only_reason
        if reason is not None:
            self.refused.emit(reason)
        return reason is not None

    def accept_prediction(self) -> None:
        if self.editor is None or self._refused_read_only():
            return
        if self.prediction is None:
            self.refused.emit("this image has no prediction to accept; pre-label it first")
            return
        self.canvas.tool.commit_held()
        self.canvas.show_prediction(False)
        edit = self._acceptance()
        self.canvas.mask_changed(edit.box)
        self.undo_stack.push_edit(edit, self._apply, self._revert, accepts=True)
        self.save(force=True)
        self.message.emit("prediction accepted as the corrected mask")

    def _acceptance(self) -> Edit:
        """Turn the working mask into the prediction, as an undo step even when they are equal already: accepting
        an untouched prediction changes no pixel but makes the image corrected, and undoing it must take that
        back like any other edit (see `save`)."""
        edit = self.editor.replace(self.prediction, "accept prediction")
        if edit is not None:
            return edit
        corner = Box(0, 0, 1, 1)
        pixel = self.editor.mask[corner.slices].copy()
        return Edit(corner, pixel, pixel.copy(), "accept prediction")

    def mark_reviewed(self) -> None:
        """Approve the working mask, saved before the status changes; if that save fails, the image is not
        marked reviewed. Refused while the prediction is shown: what is approved must be what is on screen.
        Marking an image reviewed is a step in its undo history, so a slip of R is taken back with Ctrl+Z."""
        if self.record is None or self._refused_read_only():
            return
        if self.canvas.showing_prediction:
            self.refused.emit("the prediction is shown, but R marks the working mask reviewed: press T to see the "
                            "working mask first, or Ctrl+Enter to accept the prediction")
            return
        image_id = self.record.id
        self.canvas.tool.commit_held()
        if self._nothing_to_approve():
            self.refused.emit("nothing to mark reviewed: this image has no prediction and nothing painted on it; "
                            "paint the face first, or pre-label it (Ctrl+L)")
            return
        changed_photo = self.record.labeled_hash if self.record.photo_changed else None
        if self._reviewed and changed_photo is None:  # reviewed already: approve the mask as it is, nothing to undo
            self._approve(image_id, None)
            return
        if self._reviewed:  # reviewed on another photo: approving it for this one is a step Ctrl+Z takes back
            step = ReviewCommand(lambda command: self._approve(image_id, command),
                                 lambda: self._put_back_checked_on(image_id, changed_photo))
        else:
            step = ReviewCommand(lambda command: self._approve(image_id, command),
                                 lambda: self._withdraw_review(image_id, changed_photo))
        self._approve(image_id, step)
        self.undo_stack.push(step)
        self.undo_stack.setClean()

    def unmark_reviewed(self) -> None:
        """U: take back a review however long ago it was made (R's own undo step lasts only as long as the image's
        history: not past a reopened project or the last few images visited): the image goes back to being a
        correction. U is a step of the history of its own, also straight after R, so Ctrl+Z after U approves the image
        again rather than taking back what came before R."""
        if self.record is None or self._refused_read_only():
            return
        if not self._reviewed:
            self.message.emit(f"{self.record.name} is not marked reviewed")
            return
        self.canvas.tool.commit_held()
        image_id = self.record.id
        self.save()  # the edits made since R are saved as part of the reviewed mask first, then it is taken back
        self._withdraw_review(image_id)
        self.undo_stack.push(UnreviewCommand(lambda: self._withdraw_review(image_id),
                                             lambda: self._approve(image_id, None)))
        self.undo_stack.setClean()

    def _approve(self, image_id: int, step: ReviewCommand | None) -> None:
        """Save the working mask and then write the reviewed status, both on the writer, in that order. If the
        status cannot be written, the image is not reviewed and its undo step holds nothing. The mask on screen is
        written even unedited when no corrected mask exists: the prediction on disk may be a newer one a pre-label
        run wrote since the image opened, and the person approved what they saw."""
        self._reviewed = True
        self.save(force=not self.store.mask_path("corrected", image_id).exists(), approving=True)

        def write() -> ImageRecord | None:
            with self._pending_lock:
                failed = self._unsaved.get(image_id)
            if failed is not None:
                with self._pending_lock:
                    self._reviews_unsaved[image_id] = failed[0]
                raise ProjectError(f"{failed[2]} was not marked reviewed: its mask could not be saved ({failed[1]}). "
                                   "The approval is kept with the mask: both are saved when you save (Ctrl+S) or "
                                   "close the studio")
            self.store.set_status(image_id, "reviewed", photo_seen=self._photos_seen.get(image_id))
            self._note_own_write(image_id)
            return self.store.get(image_id)

        def failed(message: str) -> None:
            if step is not None:
                step.failed = True
            if self.image_id == image_id:
                self._reviewed = self.record.status == "reviewed"
            if not self._closed:
                self.error.emit(message)

        self.writer.submit(write, self._written, failed)

    def _put_back_checked_on(self, image_id: int, checked_on: str) -> None:
        """Undo of R on a reviewed image whose photo had changed: it stays reviewed, on the photo it was checked on
        before, so it is flagged "photo changed" again."""

        def write() -> ImageRecord | None:
            self.store.put_back_checked_on(image_id, checked_on)
            self._note_own_write(image_id)
            return self.store.get(image_id)

        self.writer.submit(write, self._written, lambda msg: None if self._closed else self.error.emit(msg))
        self.message.emit("the review on the changed photo was taken back")

    def _withdraw_review(self, image_id: int, checked_on: str | None = None) -> None:
        """Undo of R, and U: the image goes back to being a correction, or to predicted when its mask is the
        model's, untouched (see `ProjectStore.withdraw_review`). The next save then settles what it is: a visit
        that changed nothing takes the correction back too (see `save`), so the image is as it was before R.
        `checked_on`: the photo the mask was checked on before R, when R was pressed on a changed photo."""
        self._reviewed = False
        accepted = self.undo_stack.accepted()

        def write() -> ImageRecord | None:
            self.store.withdraw_review(image_id, keep_as_correction=accepted, checked_on=checked_on)
            self._note_own_write(image_id)
            return self.store.get(image_id)

        def written(record: ImageRecord | None) -> None:
            self._written(record)
            self._follow_if_predicted(record)

        self.writer.submit(write, written, lambda msg: None if self._closed else self.error.emit(msg))
        self.message.emit("no longer marked reviewed")
        self._autosave.start()

    def _follow_if_predicted(self, record: ImageRecord | None) -> None:
        if (not self._closed and record is not None and record.id == self.image_id
                and record.status in ("predicted", "new")):
            self._follow_prediction()

    def _follow_prediction(self) -> None:
        """The open image is the model's again (its correction or review was taken back) while a newer prediction
        arrived after it opened: show that prediction, which is what the project now holds, instead of the older
        model mask on screen. Only when the screen holds no edit of anyone's (the mask it opened with); the pixel
        steps of the history were made on the older mask, so they go, while review steps stay (redoing R approves
        what is then on screen)."""
        if (self.editor is None or self.prediction is None or self._untouched is None or self.sketch_in_progress()
                or self.prediction.shape != self.editor.mask.shape
                or not np.array_equal(self.editor.mask, self._untouched)
                or np.array_equal(self.editor.mask, self.prediction)):
            return
        if self.undo_stack.holds_edits():
            self.undo_stack.clear()
        self.editor.mask[...] = self.prediction
        self._untouched = self.prediction.copy()
        self.undo_stack.setClean()
        self.canvas.show_prediction(self.canvas.showing_prediction, cancel_tool=False)

    def _nothing_to_approve(self) -> bool:
        """An image with no prediction that nobody painted holds only background: reviewing it by a slip would put
        an empty face in the data set. A mask emptied on purpose (erased, or saved so on an earlier visit) is the
        annotator's work and may be approved."""
        return (self.editor is not None and self.prediction is None and self._untouched is not None
                and not self.undo_stack.can_undo_edit() and not self.editor.mask.any())

    def reload_prediction(self) -> None:
        """Pick up a new prediction written by a pre-label job; the working mask follows it if it had no edits.
        Otherwise the mask the image opened with is still the one that counts as untouched: undoing every edit back
        to it takes the correction back (see `save`) and then shows the new prediction (`_follow_prediction`)."""
        if self.record is None or self.editor is None:
            return
        with self._pending_lock:  # before the masks are read: a save landing in between must count as one
            saving = self._pending_writes[self.record.id] > 0 or self.record.id in self._unsaved
        try:
            prediction = self.store.predicted_mask(self.record.id)
            corrected = self.store.corrected_mask(self.record.id)
        except ProjectError as e:
            self.error.emit(str(e))
            return
        if prediction is None or prediction.shape != self.editor.mask.shape:
            return
        self.prediction = prediction
        self.canvas.prediction = prediction
        if corrected is None and not (self.modified or saving or self.canvas.tool_in_progress()):
            self.editor.mask[...] = prediction
            self._untouched = prediction.copy()
            self.undo_stack.clear()
        self.canvas.show_prediction(self.canvas.showing_prediction, cancel_tool=False)
        self.record = self.store.get(self.record.id) or self.record
        self.record_updated.emit(self.record)

    def _open_failed(self, message: str) -> bool:
        """The image the user chose cannot be opened: show nothing rather than the previous image, so what is
        highlighted in the list and what the editing keys act on never differ."""
        self._clear(f"This image cannot be opened.\n\n{message}\n\nPress D or A to move on.")
        self.unloaded.emit()
        self.error.emit(message)
        return False

    def _clear(self, notice: str = "") -> None:
        self.record = self.editor = self.prediction = self._untouched = None
        self._reviewed = False
        self.undo_stack.clear()
        self.canvas.clear(notice)

    def close(self) -> None:
        self.flush()
        self._closed = True
        self._autosave.stop()
        self._clear()
        self.histories.forget()
