"""A live plot of a retrain: training loss per step, and the validation score after each epoch.

The plot lives in a narrow dock and may get little more than its minimum height, so it spends no room on titles
or axis captions: one legend line names both curves, the two plots share the step axis (shown once, at the
bottom), and the value axes carry few, small labels.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QWidget

LOSS_COLOR = (240, 160, 60)
SCORE_COLOR = (80, 190, 120)
MINIMUM_HEIGHT = 150
TICK_POINT_SIZE = 7.5
VALUE_AXIS_WIDTH = 36


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _compact_axis(axis: pg.AxisItem, font: QFont) -> None:
    """Small tick labels, major ticks only, so a short axis holds two or three labels that do not touch."""
    axis.setStyle(tickFont=font, maxTextLevel=0, tickTextOffset=3,
                  textFillLimits=[(0, 0.6), (2, 0.4)])
    axis.setTickDensity(0.6 if axis.orientation in ("left", "right") else 1.0)


class TrainingPlot(pg.GraphicsLayoutWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("trainingPlot")
        self.setBackground((34, 36, 39))
        self.setMinimumHeight(MINIMUM_HEIGHT)
        self.setToolTip("Training loss (top) and validation score (bottom) by training step")
        self.ci.setContentsMargins(2, 2, 6, 2)
        self.ci.setSpacing(2)
        self.legend = self.addLabel("", row=0, col=0, size="8pt")
        self.loss_plot = self.addPlot(row=1, col=0)
        self.score_plot = self.addPlot(row=2, col=0)
        self._compact(self.loss_plot)
        self._compact(self.score_plot)
        self.loss_plot.hideAxis("bottom")
        self.score_plot.setXLink(self.loss_plot)
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen(LOSS_COLOR, width=2))
        self.score_curve = self.score_plot.plot(pen=pg.mkPen(SCORE_COLOR, width=2), symbol="o", symbolSize=5,
                                                symbolBrush=SCORE_COLOR)
        self.steps: list[float] = []
        self.losses: list[float] = []
        self.score_steps: list[float] = []
        self.scores: list[float] = []
        self.metric_title = "val. mIoU"
        self._show_legend()

    def _compact(self, plot: pg.PlotItem) -> None:
        font = QFont(self.font())
        font.setPointSizeF(TICK_POINT_SIZE)
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        for name in ("left", "bottom"):
            _compact_axis(plot.getAxis(name), font)
        plot.getAxis("left").setWidth(VALUE_AXIS_WIDTH)

    def _show_legend(self) -> None:
        self.legend.setText(f'<span style="color:{_hex(LOSS_COLOR)}">&#9473; training loss</span>'
                            f'&nbsp;&nbsp;<span style="color:{_hex(SCORE_COLOR)}">&#9679; {self.metric_title}</span>')

    def clear_data(self, metric_title: str = "val. mIoU") -> None:
        self.steps, self.losses, self.score_steps, self.scores = [], [], [], []
        self.metric_title = metric_title
        self._show_legend()
        self.loss_curve.setData([], [])
        self.score_curve.setData([], [])

    def add_loss(self, step: int, loss: float) -> None:
        if loss is None or not math.isfinite(loss):
            return
        self.steps.append(step)
        self.losses.append(loss)
        self.loss_curve.setData(self.steps, self.losses)

    def add_score(self, step: int, score: float) -> None:
        if score is None or not math.isfinite(score):
            return
        self.score_steps.append(step)
        self.scores.append(score)
        self.score_curve.setData(self.score_steps, self.scores)
