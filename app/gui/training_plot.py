"""A live plot of a retrain: training loss per step, and the validation score after each epoch."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtWidgets import QWidget


class TrainingPlot(pg.GraphicsLayoutWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("trainingPlot")
        self.setBackground((34, 36, 39))
        self.setMinimumHeight(220)
        self.loss_plot = self.addPlot(row=0, col=0, title="training loss")
        self.score_plot = self.addPlot(row=1, col=0, title="validation mIoU")
        for plot in (self.loss_plot, self.score_plot):
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setMenuEnabled(False)
            plot.getAxis("bottom").setLabel("step")
            plot.getAxis("left").setWidth(44)
        self.score_plot.setXLink(self.loss_plot)
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen((240, 160, 60), width=2))
        self.score_curve = self.score_plot.plot(pen=pg.mkPen((80, 190, 120), width=2), symbol="o", symbolSize=6,
                                                symbolBrush=(80, 190, 120))
        self.steps: list[float] = []
        self.losses: list[float] = []
        self.score_steps: list[float] = []
        self.scores: list[float] = []

    def clear_data(self, metric_title: str = "validation mIoU") -> None:
        self.steps, self.losses, self.score_steps, self.scores = [], [], [], []
        self.score_plot.setTitle(metric_title)
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
