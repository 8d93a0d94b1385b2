#!/usr/bin/env bash
# Screenshots of the studio for the README, taken under a virtual X display:
#   docs/screenshots/studio-overlay.png   an image with its mask overlay, the list, the palette and the models panel
#   docs/screenshots/studio-outline.png   the same image in outline mode, zoomed in, with a correction painted
#   docs/screenshots/studio-retrain.png   the models panel during a real (small) retrain run
# Needs: xvfb-run (Debian: xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0) and the project's .venv.
# Usage: packaging/screenshot.sh [OUT_DIR]   (the retrain shot trains a small network: minutes on a slow CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="$(realpath -m "${1:-docs/screenshots}")"
PY="${PYTHON:-.venv/bin/python}"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cat > "$WORK/shoot.py" <<'EOF'
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from faceparse.app.gui.main_window import MainWindow
from faceparse.app.gui.settings import StudioSettings
from faceparse.app.gui.style import apply_style
from faceparse.core.store import ProjectStore
from faceparse.core.synthetic import draw_face
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

out, work = Path(sys.argv[1]), Path(sys.argv[2])
app = QApplication(sys.argv[:1])
apply_style(app)


def pump(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def wait_for(condition, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def shoot(window: MainWindow, name: str) -> None:
    pump(0.5)
    window.grab().save(str(out / name))
    print(f"wrote {out / name}")


folder = work / "faces"
folder.mkdir()
for sample in sorted((Path("resources") / "samples").glob("*.jpg")):
    shutil.copy(sample, folder / sample.name)
with ProjectStore.create(folder, "celebamask-hq") as store:
    truths = {}
    for i in range(10):
        picture, mask = draw_face(4242 + i, size=512, schema=store.schema)
        Image.fromarray(picture).save(folder / f"face_{i:02d}.jpg", quality=92)
        truths[f"face_{i:02d}.jpg"] = mask
    store.scan()
    rng = np.random.default_rng(0)
    for record in store.images():
        if record.relpath in truths:
            store.save_predicted(record.id, truths[record.relpath], "v0001", uncertainty=float(rng.uniform(0.05, 0.4)))
    ids = {r.relpath: r.id for r in store.images()}
    for name in ("face_00.jpg", "face_01.jpg", "face_02.jpg", "face_03.jpg", "face_04.jpg", "face_05.jpg"):
        store.save_corrected(ids[name], truths[name])
    store.set_status(ids["face_00.jpg"], "reviewed")
    store.set_status(ids["face_01.jpg"], "reviewed")

window = MainWindow(StudioSettings.at(work / "studio.ini"))
window.resize(1600, 1000)
window.show()
window.open_folder(folder)
wait_for(lambda: window.ws is not None and window.ws.session.record is not None, 60, "the project to open")
ws = window.ws
window.resizeDocks([window.list_dock, window.palette_dock], [300, 380], Qt.Orientation.Horizontal)
ws.image_list.select_id(ids["face_07.jpg"])
wait_for(lambda: ws.session.image_id == ids["face_07.jpg"], 30, "the image to open")
ws.canvas.fit()
pump(3.0)  # thumbnails
QTest.mouseMove(ws.canvas.viewport(), ws.canvas.mapFromScene(QPointF(300, 210)))
shoot(window, "studio-overlay.png")

ws.palette.select(13)
editor = ws.canvas.editor
edit = editor.stroke([(150, 150), (200, 110), (260, 100), (320, 115)], 14, 13)
ws.canvas.mask_changed(edit.box)
ws.canvas.commit(edit)
window.actions["toggle_outline"].trigger()
ws.canvas.fit()
ws.canvas.zoom_by(1.6)
ws.canvas.centerOn(QPointF(250, 200))
shoot(window, "studio-outline.png")
window.actions["toggle_outline"].trigger()

panel = ws.models
window.models_dock.raise_()
panel.epochs.setValue(4)
panel.input_size.setCurrentIndex(panel.input_size.findData(64))
panel.extra_options = {"batch_size": 2, "threads": 1, "export_onnx": False,
                       "repredict": False, "pretrain": False, "patience": 0, "time_limit_s": None}
if not panel.start_retrain():
    raise SystemExit(f"retrain did not start: {panel.retrain_phase.text()}")
wait_for(lambda: sum(e.phase == "validate" for e in panel.events) >= 3 or (panel.events and panel.events[-1].final),
         3600, "three validation rounds")
shoot(window, "studio-retrain.png")
panel.retrain.cancel()
wait_for(lambda: panel.events and panel.events[-1].final, 120, "the job to stop")
window.close()
EOF

xvfb-run -a -s "-screen 0 1600x1000x24" "$PY" "$WORK/shoot.py" "$OUT" "$WORK"
