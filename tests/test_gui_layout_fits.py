"""The window fits a small screen with a project open, and what the panels say or show cannot make it grow: the
models panel scrolls and wraps, the image list's counts wrap, the welcome page narrows. Also what the panels draw
stays legible: the retrain plot's tick labels, the versions table's columns and its Activate button, unticked check
boxes in the dark theme, and status badges on a selected row."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from faceparse.app.gui import models_panel
from faceparse.app.gui.image_list import ImageRowDelegate
from faceparse.app.gui.palette_panel import SHOW_COLUMN
from faceparse.app.gui.style import DarkFusionStyle, dark_palette
from faceparse.app.gui.training_plot import TrainingPlot
from faceparse.app.gui.welcome import RECENT_WIDTH, WelcomePage
from faceparse.core.prelabel import PrelabelResult
from faceparse.core.store import ProjectStore
from onnx_models import foreground_model
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter
from PySide6.QtWidgets import QApplication, QWidget
from test_gui_helpers import make_project, open_window

SMALL = QSize(900, 600)
LONG_NOTICE = ("GPU (CUDA) — CUDA was requested but this ONNX Runtime has no CUDA provider (install onnxruntime-gpu "
               "for it), so inference runs on the CPU: CPUExecutionProvider")


def _add_version(store: ProjectStore, version: str, score: float, parent: str | None = None) -> None:
    """A version that counts as complete: a tiny ONNX model and placeholder checkpoint files."""
    path = store.models_dir / "parser" / version
    path.mkdir(parents=True)
    foreground_model(path / "model.onnx")
    (path / "model.safetensors").write_bytes(b"")
    (path / "meta.json").write_text("{}")
    store.add_model_version("parser", version, path, {"miou_no_bg": score}, parent=parent)


def _small_window(qtbot, tmp_path, versions: bool = False):
    folder = make_project(tmp_path / "faces", count=3, size=64)
    if versions:
        with ProjectStore.open(folder) as store:
            _add_version(store, "v0001", 0.31)
            _add_version(store, "v0002", 0.42, parent="v0001")
            store.set_active_model("parser", "v0002")
    window = open_window(qtbot, folder, tmp_path)
    window.models_dock.raise_()
    window.resize(SMALL)  # a window that cannot be this small stays larger; the first test says so
    _settle(qtbot)
    return window


def _settle(qtbot) -> None:
    QApplication.processEvents()
    qtbot.wait(50)


def _widths(window) -> tuple[int, int, int]:
    return window.width(), window.models_dock.width(), window.ws.models.minimumSizeHint().width()


# --- the window fits 900 x 600 ---------------------------------------------------------------------------------


def test_with_a_project_open_the_window_fits_900_by_600_with_every_dock_shown(qtbot, tmp_path):
    window = _small_window(qtbot, tmp_path, versions=True)
    hint = window.minimumSizeHint()
    assert hint.width() <= SMALL.width() and hint.height() <= SMALL.height(), hint
    assert window.size() == SMALL
    for dock in (window.list_dock, window.palette_dock, window.models_dock):
        assert not dock.isHidden() and dock.widget() is not None
    assert window.list_dock.isVisible() and window.models_dock.isVisible()
    window.palette_dock.raise_()
    _settle(qtbot)
    assert window.size() == SMALL and window.palette_dock.isVisible()


def test_the_models_panel_scrolls_instead_of_setting_the_window_height(qtbot, tmp_path):
    window = _small_window(qtbot, tmp_path)
    panel = window.ws.models
    area = panel.scroll_area
    assert area.widgetResizable()
    assert area.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    assert area.focusPolicy() == Qt.FocusPolicy.NoFocus  # a click in the panel leaves the keys with the canvas
    assert panel.minimumSizeHint().height() <= 150
    assert panel.plot.minimumHeight() <= 160
    assert area.widget().height() > area.viewport().height()  # 600 px is less than the panel's contents


def test_every_control_of_the_models_panel_fits_its_narrowest_width(qtbot, tmp_path):
    """At the panel's minimum width nothing reaches past the right edge (the contents cannot scroll sideways)."""
    window = _small_window(qtbot, tmp_path)
    panel = window.ws.models
    assert panel.minimumSizeHint().width() <= 260
    window.resizeDocks([window.models_dock], [1], Qt.Orientation.Horizontal)
    _settle(qtbot)
    area = panel.scroll_area
    right = area.viewport().width()
    assert area.widget().width() <= right
    for child in area.widget().findChildren(QWidget):
        if child.isVisible() and not child.isWindow():
            edge = child.mapTo(area.widget(), QPoint(child.width(), 0)).x()
            assert edge <= right, (child.objectName() or type(child).__name__, edge, right)


def test_the_image_lists_counts_wrap_instead_of_widening_the_dock(qtbot, tmp_path):
    window = _small_window(qtbot, tmp_path)
    panel = window.ws.image_list
    assert panel.summary.wordWrap()
    assert panel.minimumSizeHint().width() <= 240
    assert window.list_dock.minimumSizeHint().width() <= 260


def test_the_welcome_page_narrows_with_the_window_and_keeps_its_width_where_there_is_room(qtbot, tmp_path):
    page = WelcomePage()
    qtbot.addWidget(page)
    page.set_recent([str(tmp_path / "a rather long parent folder name" / f"project {i}") for i in range(3)])
    assert page.minimumSizeHint().width() <= 320
    page.resize(900, 500)
    page.show()
    qtbot.waitExposed(page)
    qtbot.waitUntil(lambda: page.recent.width() == RECENT_WIDTH, timeout=5_000)
    page.resize(300, 500)
    qtbot.waitUntil(lambda: page.recent.width() <= 300, timeout=5_000)
    assert page.width() == 300


# --- status texts cannot widen the dock ------------------------------------------------------------------------


def test_a_long_device_notice_wraps_and_leaves_the_window_as_it_was(qtbot, tmp_path, monkeypatch):
    window = _small_window(qtbot, tmp_path)
    panel = window.ws.models
    before = _widths(window)
    monkeypatch.setattr(models_panel, "device_description", lambda _device: LONG_NOTICE)
    panel.device.setCurrentIndex((panel.device.currentIndex() + 1) % panel.device.count())
    _settle(qtbot)
    assert panel.device_label.text() == LONG_NOTICE and panel.device_label.wordWrap()
    assert panel.device_label.toolTip() == LONG_NOTICE
    assert _widths(window) == before
    assert window.minimumSizeHint().width() <= SMALL.width()


def test_a_pre_label_run_reporting_its_provider_moves_neither_the_dock_nor_the_canvas(qtbot, tmp_path):
    window = _small_window(qtbot, tmp_path)
    panel = window.ws.models
    canvas = window.ws.canvas
    before, zoom = _widths(window), canvas.scale_factor
    result = PrelabelResult(state="done", job_id=1, model_id="starter", model_path=tmp_path / "model.onnx",
                            provider="CPUExecutionProvider", mode="all", total=3, predicted=3, seconds=1.5,
                            notices=["a notice long enough to need more than one line in a narrow dock, and more"])
    panel._all_done(result)
    _settle(qtbot)
    assert panel.device_label.text() == "CPU (last run: CPUExecutionProvider)"
    assert _widths(window) == before
    assert canvas.scale_factor == pytest.approx(zoom)


@pytest.mark.parametrize("label", ["prelabel_status", "retrain_phase", "retrain_result", "device_label"])
def test_no_status_text_of_the_models_panel_can_widen_it(qtbot, tmp_path, label):
    window = _small_window(qtbot, tmp_path)
    panel = window.ws.models
    before = _widths(window)
    widget = getattr(panel, label)
    widget.setText("Pre-labeling failed: " + "CUDAExecutionProvider" * 6 + " could not be loaded" + " again" * 30)
    _settle(qtbot)
    assert widget.wordWrap()
    assert _widths(window) == before


# --- the retrain plot ------------------------------------------------------------------------------------------


def _filled_plot(qtbot, size: QSize) -> TrainingPlot:
    plot = TrainingPlot()
    qtbot.addWidget(plot)
    plot.clear_data("val. mIoU")
    for step in range(1, 301):
        plot.add_loss(step, 1.5 * math.exp(-step / 80) + 0.02 * (step % 7))
        if step % 60 == 0:
            plot.add_score(step, 0.2 + step / 1000)
    plot.resize(size)
    plot.show()
    qtbot.waitExposed(plot)
    _settle(qtbot)
    return plot


def _tick_label_rects(axis) -> list:
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _axis_spec, _ticks, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return sorted((rect for rect, _flags, _text in texts), key=lambda r: r.top())


@pytest.mark.parametrize("size", [QSize(200, 150), QSize(240, 180), QSize(320, 300)])
def test_the_plots_value_labels_do_not_overlap_at_the_sizes_the_dock_gives(qtbot, size):
    plot = _filled_plot(qtbot, size)
    for item in (plot.loss_plot, plot.score_plot):
        rects = _tick_label_rects(item.getAxis("left"))
        assert len(rects) >= 2
        for upper, lower in zip(rects, rects[1:], strict=False):
            assert upper.bottom() <= lower.top(), (size, [(r.top(), r.bottom()) for r in rects])


def test_the_plot_names_its_curves_once_instead_of_titling_each(qtbot):
    plot = _filled_plot(qtbot, QSize(240, 180))
    assert plot.loss_plot.titleLabel.text == "" and plot.score_plot.titleLabel.text == ""
    assert "training loss" in plot.legend.text and "val. mIoU" in plot.legend.text
    plot.clear_data("val. IoU")
    assert "val. IoU" in plot.legend.text and plot.losses == [] and plot.scores == []


# --- the versions table ----------------------------------------------------------------------------------------


def test_the_versions_table_shows_a_score_title_and_its_state_column_in_a_narrow_dock(qtbot, tmp_path):
    window = _small_window(qtbot, tmp_path, versions=True)
    panel = window.ws.models
    table = panel.versions
    assert table.headerItem().text(models_panel.SCORE_COLUMN) == "val. mIoU"
    assert "miou_no_bg" in table.headerItem().toolTip(models_panel.SCORE_COLUMN)
    window.resizeDocks([window.models_dock], [1], Qt.Orientation.Horizontal)
    _settle(qtbot)
    assert panel.width() <= 275
    header = table.header()
    width = table.viewport().width()
    for column in (models_panel.VERSION_COLUMN, models_panel.SCORE_COLUMN, models_panel.STATE_COLUMN):
        assert 0 <= header.sectionViewportPosition(column)
        assert header.sectionViewportPosition(column) + header.sectionSize(column) <= width, column
    assert not table.horizontalScrollBar().isVisible()
    active = next(table.topLevelItem(i) for i in range(table.topLevelItemCount())
                  if table.topLevelItem(i).text(models_panel.VERSION_COLUMN) == "v0002")
    assert active.text(models_panel.STATE_COLUMN) == "active"
    state_width = table.fontMetrics().horizontalAdvance("active")
    assert header.sectionSize(models_panel.STATE_COLUMN) >= state_width


def test_activate_is_off_with_nothing_selected_and_for_the_active_version(qtbot, tmp_path):
    window = _small_window(qtbot, tmp_path, versions=True)
    panel = window.ws.models
    table = panel.versions
    rows = {table.topLevelItem(i).text(0): table.topLevelItem(i) for i in range(table.topLevelItemCount())}
    assert list(rows) == ["v0002", "v0001", "starter"]
    assert table.currentItem() is rows["v0001"] and panel.activate_button.isEnabled()
    table.setCurrentItem(rows["v0002"])
    assert not panel.activate_button.isEnabled()
    assert "already the active model" in panel.activate_button.toolTip()
    table.setCurrentItem(rows["starter"])
    assert panel.activate_button.isEnabled()
    table.setCurrentItem(None)
    assert table.currentItem() is None and not panel.activate_button.isEnabled()


def test_a_refresh_keeps_the_chosen_version_and_never_selects_the_active_one(qtbot, tmp_path):
    window = _small_window(qtbot, tmp_path, versions=True)
    panel = window.ws.models
    table = panel.versions
    starter = next(table.topLevelItem(i) for i in range(table.topLevelItemCount())
                   if table.topLevelItem(i).text(0) == "starter")
    table.setCurrentItem(starter)
    panel.refresh_versions()
    assert table.currentItem().text(0) == "starter" and panel.activate_button.isEnabled()
    window.ws.store.set_active_model("parser", None)
    panel.refresh_versions()
    assert table.currentItem().text(0) == "v0002" and panel.activate_button.isEnabled()


# --- legibility in the dark theme ------------------------------------------------------------------------------


def _differing_pixels(image: QImage, rect: QRect, background: QColor, threshold: int = 60) -> int:
    count = 0
    for y in range(rect.top(), rect.bottom() + 1):
        for x in range(rect.left(), rect.right() + 1):
            c = image.pixelColor(x, y)
            if abs(c.red() - background.red()) + abs(c.green() - background.green()) + \
                    abs(c.blue() - background.blue()) > threshold:
                count += 1
    return count


def test_an_unticked_class_box_is_visible_in_the_dark_theme(qtbot, tmp_path):
    window = _small_window(qtbot, tmp_path)
    panel = window.ws.palette
    style = DarkFusionStyle()
    panel.tree.setStyle(style)
    panel.setPalette(dark_palette())
    window.palette_dock.raise_()
    _settle(qtbot)
    tree = panel.tree
    item = tree.topLevelItem(0)
    assert item.checkState(SHOW_COLUMN) == Qt.CheckState.Unchecked and tree.currentItem() is not item
    cell = tree.visualItemRect(item)
    cell.setLeft(tree.header().sectionViewportPosition(SHOW_COLUMN))
    cell.setWidth(tree.header().sectionSize(SHOW_COLUMN))
    image = tree.viewport().grab().toImage()
    base = dark_palette().color(dark_palette().ColorRole.Base)
    assert _differing_pixels(image, cell.adjusted(1, 1, -1, -1), base) >= 20
    image.save(str(tmp_path / "palette.png"))


def test_a_badge_on_a_selected_row_has_a_light_outline(qtbot):
    highlight = dark_palette().color(dark_palette().ColorRole.Highlight)
    record = SimpleNamespace(error=None, photo_changed=False, status="predicted")
    font = QFont(QApplication.font())
    small = QFont(font)
    small.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
    middle = 10 + (QFontMetrics(small).height() + 2) // 2
    edges = {}
    for selected in (False, True):
        image = QImage(160, 40, QImage.Format.Format_ARGB32)
        image.fill(highlight)
        painter = QPainter(image)
        ImageRowDelegate._badge(painter, font, QRect(10, 10, 0, 20), record, selected)
        painter.end()
        edges[selected] = max(sum(image.pixelColor(x, middle).getRgb()[:3]) / 3 for x in range(9, 13))
    assert edges[True] >= 190, edges
    assert edges[False] < 190, edges


def test_in_a_narrow_window_the_toolbar_keeps_every_action_in_view_and_hides_only_its_controls(qtbot, tmp_path):
    folder = make_project(tmp_path / "p", count=1)
    window = open_window(qtbot, folder, tmp_path)
    window.resize(900, 600)
    qtbot.waitUntil(lambda: window.width() == 900)
    bar = window.toolbar
    qtbot.waitUntil(lambda: not window.brush_spin.isVisible() or bar.widgetForAction(
        window.actions["mark_reviewed"]).isVisible())
    for name in ("open_folder", "tool_brush", "next_unreviewed", "accept_prediction", "mark_reviewed"):
        button = bar.widgetForAction(window.actions[name])
        assert button is not None and button.isVisible(), name
    assert not window.opacity_slider.isVisible(), "at 900 px the opacity control is the part that folds away"


def test_a_combo_box_narrower_than_its_entries_names_its_choice_and_opens_wide_enough(qtbot, tmp_path):
    folder = make_project(tmp_path / "p", count=1)
    window = open_window(qtbot, folder, tmp_path)
    panel = window.ws.models
    framing, order = panel.framing, window.ws.image_list.order
    explanation = "Each face: every face found"
    for combo in (framing, order, panel.device, panel.input_size):
        view = combo.view()
        widest = max(view.fontMetrics().horizontalAdvance(combo.itemText(i)) for i in range(combo.count()))
        assert view.minimumWidth() >= widest, combo.currentText()
        assert combo.toolTip().startswith(combo.currentText())
    assert explanation in framing.toolTip()
    framing.setCurrentIndex((framing.currentIndex() + 1) % framing.count())
    assert framing.toolTip().startswith(framing.currentText()) and explanation in framing.toolTip()
    order.setCurrentIndex(order.count() - 1)
    assert order.toolTip() == order.currentText()
