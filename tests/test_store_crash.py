"""Kill a writing process at random moments; the project must always open with every mask whole.

The writer saves predicted and corrected masks in a loop and reports each completed save; the test kills it after a
random number of saves plus a random delay. Each mask encodes the number of the save it came from
(first three pixels, base 19) and is otherwise noise derived from that number, so a reader can tell a whole mask
from a torn one, and which save it belongs to. The predicted row's uncertainty carries the same number: the file is
written before the row, so the file is never older than the row.
"""

import random
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from faceparse.core.imageio import load_mask
from faceparse.core.store import ProjectStore
from PIL import Image

SIZE = (96, 128)  # (height, width): large enough that a PNG write takes a while to interrupt
CLASSES = 19

WRITER = textwrap.dedent(f"""
    import sys
    import numpy as np
    from faceparse.core.store import ProjectStore

    def pattern(v):
        m = np.random.default_rng(v).integers(0, {CLASSES}, {SIZE}, dtype=np.uint8)
        m[0, 0], m[0, 1], m[0, 2] = v % 19, (v // 19) % 19, (v // 361) % 19
        return m

    store = ProjectStore.open(sys.argv[1])
    ids = [r.id for r in store.images()]
    v = int(max((r.uncertainty or 0) for r in store.images())) + 1
    shift = v % len(ids)
    ids = ids[shift:] + ids[:shift]  # each run starts on another image, so all of them get interrupted
    print("ready", flush=True)
    while True:
        for i in ids:
            store.save_predicted(i, pattern(v), f"v{{v}}", uncertainty=float(v))
            print("saved", flush=True)
            store.save_corrected(i, pattern(v + 1))
            print("saved", flush=True)
        v += 2
""")


def pattern(v):
    m = np.random.default_rng(v).integers(0, CLASSES, SIZE, dtype=np.uint8)
    m[0, 0], m[0, 1], m[0, 2] = v % 19, (v // 19) % 19, (v // 361) % 19
    return m


def decode(mask):
    """The save number a mask came from; fails the test if the mask is not exactly that save's pattern."""
    v = int(mask[0, 0]) + 19 * int(mask[0, 1]) + 361 * int(mask[0, 2])
    assert np.array_equal(mask, pattern(v)), "mask content is not a whole saved mask"
    return v


def check_project(folder):
    db = sqlite3.connect(folder / ".faceparse" / "project.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with ProjectStore.open(folder) as store:
        for kind in ("predicted", "corrected"):
            for f in (store.masks_dir / kind).iterdir():
                if f.name.startswith("."):
                    continue  # an abandoned temp file; never read by the store
                decode(load_mask(f))
        for rec in store.images():
            predicted = store.predicted_mask(rec.id)
            corrected = store.corrected_mask(rec.id)
            if rec.status in ("predicted", "corrected", "reviewed"):
                assert predicted is not None, f"row says {rec.status} but the predicted mask is missing"
            if rec.status in ("corrected", "reviewed"):
                assert corrected is not None, f"row says {rec.status} but the corrected mask is missing"
            if rec.uncertainty is not None:
                # the row was committed after its file, so the file is at least as new as the row
                assert decode(predicted) >= int(rec.uncertainty)
                assert rec.model_version == f"v{int(rec.uncertainty)}"


@pytest.mark.slow
def test_killed_writer_never_leaves_a_broken_mask_or_dangling_row(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for k in range(3):
        Image.new("RGB", (SIZE[1], SIZE[0]), (k, 0, 0)).save(folder / f"face{k}.png")
    with ProjectStore.create(folder) as store:
        store.scan()
        store.fill_details()
    writer = tmp_path / "writer.py"
    writer.write_text(WRITER)

    rng = random.Random(1234)
    kills = 0
    for _ in range(32):
        proc = subprocess.Popen([sys.executable, str(writer), str(folder)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            assert line.strip() == "ready", proc.stderr.read()
            # kill after a random number of completed saves plus a random delay: random points in the save
            # cycle however fast or slow the machine is
            for _ in range(rng.randint(0, 4)):
                assert proc.stdout.readline().strip() == "saved", proc.stderr.read()
            try:
                proc.wait(timeout=rng.uniform(0.0, 0.03))
            except subprocess.TimeoutExpired:
                proc.kill()
                kills += 1
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        assert proc.returncode != 0 or kills == 0
        check_project(folder)
    assert kills == 32
    with ProjectStore.open(folder) as store:
        assert store.count("corrected") > 0
        assert max(r.uncertainty for r in store.images(status="corrected")) > 3, "the writer never got going"
