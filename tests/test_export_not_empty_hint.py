"""A destination that is not empty is refused with the way to replace it that fits where the export was asked for:
the CLI names its flag, the studio's dialog its check box."""

from faceparse.app.cli import main
from faceparse.app.gui.export_dialog import REPLACE_TEXT
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gui_helpers import make_project, open_window


def occupied(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    return out


def test_the_cli_names_its_flag(capsys, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, corrected=True)
    out = occupied(tmp_path)
    code = main(["export", str(folder), "--format", "index-png", "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0
    assert "already exists and is not empty; choose a new folder, or replace an earlier export there with " \
        "--overwrite" in err
    assert (out / "notes.txt").read_text() == "mine"


def test_the_dialog_names_its_check_box_and_no_flag(qtbot, tmp_path):
    folder = make_project(tmp_path / "faces", count=2, corrected=True)
    out = occupied(tmp_path)
    window = open_window(qtbot, folder, tmp_path)
    dialog = window.show_export()
    dialog.destination.setText(str(out))
    QTest.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "failed" in dialog.status.text(), timeout=20_000)
    text = dialog.status.text()
    assert f'replace an earlier export there: tick "{REPLACE_TEXT}"' in text
    assert "--" not in text.replace(str(out), "")
    assert dialog.overwrite.text() == REPLACE_TEXT
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert dialog.result is None
