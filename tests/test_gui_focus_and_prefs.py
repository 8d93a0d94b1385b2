"""The keys stay with the canvas after the toolbar is used, a Space released elsewhere ends panning, and the view
preferences a user sets are there next time."""

from faceparse.app.gui.main_window import MainWindow
from faceparse.app.gui.settings import StudioSettings
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QStyle, QStyleOptionSpinBox
from test_gui_helpers import drag, make_project, open_window, viewport_point


def test_class_and_navigation_keys_work_after_clicking_the_brush_size_arrows(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=3), tmp_path)
    ws, spin = window.ws, window.brush_spin
    ws.canvas.setFocus()
    option = QStyleOptionSpinBox()
    spin.initStyleOption(option)
    up = spin.style().subControlRect(QStyle.ComplexControl.CC_SpinBox, option, QStyle.SubControl.SC_SpinBoxUp, spin)
    size = spin.value()
    QTest.mouseClick(spin, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, up.center())
    assert spin.value() == size + 1
    qtbot.waitUntil(lambda: QApplication.focusWidget() is ws.canvas)
    first = ws.session.image_id
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_3)
    assert ws.canvas.label == 3 and spin.value() == size + 1
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_D)
    qtbot.waitUntil(lambda: ws.session.image_id != first)


def test_a_size_typed_into_the_box_is_taken_and_enter_gives_the_keys_back(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=1), tmp_path)
    spin = window.brush_spin
    spin.lineEdit().setFocus()
    spin.lineEdit().selectAll()
    QTest.keyClicks(spin.lineEdit(), "37")
    QTest.keyClick(spin.lineEdit(), Qt.Key.Key_Return)
    assert spin.value() == 37 and window.ws.canvas.brush_size == 37
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.ws.canvas)


def test_space_released_while_another_widget_has_the_keys_ends_panning(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=1, predicted=False), tmp_path)
    canvas, session = window.ws.canvas, window.ws.session
    canvas.setFocus()
    QTest.keyPress(canvas, Qt.Key.Key_Space)
    window.brush_spin.setFocus()
    QTest.keyRelease(window.brush_spin, Qt.Key.Key_Space)
    canvas.setFocus()
    drag(canvas, [viewport_point(canvas, 30.5, 60.5), viewport_point(canvas, 90.5, 60.5)])
    assert session.editor.mask.any()


def test_outline_mode_and_the_tool_are_remembered(qtbot, tmp_path):
    window = open_window(qtbot, make_project(tmp_path / "faces", count=1), tmp_path)
    window.actions["toggle_outline"].trigger()
    window.actions["tool_polygon"].trigger()
    assert window.close()
    again = MainWindow(StudioSettings.at(tmp_path / "studio.ini"))
    qtbot.addWidget(again)
    assert again.actions["toggle_outline"].isChecked() and again.actions["tool_polygon"].isChecked()
    assert again.open_folder(tmp_path / "faces")
    qtbot.waitUntil(lambda: again.ws is not None and again.ws.session.record is not None, timeout=10_000)
    assert again.ws.canvas.tool.name == "polygon" and again.ws.canvas.overlay.outline
    again.actions["tool_picker"].trigger()
    assert again.close()
    third = MainWindow(StudioSettings.at(tmp_path / "studio.ini"))
    qtbot.addWidget(third)
    assert third.actions["tool_polygon"].isChecked(), "the picker is not remembered"
