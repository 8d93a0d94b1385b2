"""The studio opens without loading PyTorch: only training needs it, and importing it takes seconds."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path

    from PIL import Image
    from PySide6.QtWidgets import QApplication

    from faceparse.app.gui.main_window import MainWindow
    from faceparse.app.gui.settings import StudioSettings
    from faceparse.core.synthetic import draw_face

    root = Path(sys.argv[1])
    folder = root / "faces"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(draw_face(i, 64)[0]).save(folder / f"face{i}.png")
    app = QApplication([])
    window = MainWindow(StudioSettings.at(root / "studio.ini"))
    window.show()
    assert window.open_folder(str(folder), "celebamask-hq")
    for _ in range(20):
        app.processEvents()
    print("loaded:", sorted(m for m in ("torch", "segmentation_models_pytorch", "timm") if m in sys.modules))
""")


def test_opening_a_folder_in_the_studio_does_not_load_pytorch(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "loaded: []" in done.stdout, done.stdout + done.stderr
