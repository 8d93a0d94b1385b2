"""The arg-max of bilinearly enlarged class scores, without enlarging them.

Segmentation networks usually end by enlarging C×h×w scores to the input size (4× for DeepLabV3+), and the mask is
the arg-max over C of that enlargement: writing C×H×W floats and reading them back costs about as much as a tenth of
the network. But an enlarged pixel is a convex combination of its (up to) four source pixels, and when those four
agree on their top class the combination has the same top class. So the mask is the enlarged low-resolution arg-max
everywhere except near class boundaries, where the scores are interpolated for just those pixels. The result equals
the arg-max of the full enlargement, up to ties within float rounding (a pixel in a million or so). Those pixels
are interpolated by OpenCV's remap when its 1/32-pixel coordinate grid holds their positions exactly (2×, 4× and 8×
half-pixel enlargement), and by numpy otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

ALIGN_CORNERS = "align_corners"
HALF_PIXEL = "half_pixel"
PYTORCH_HALF_PIXEL = "pytorch_half_pixel"
ASYMMETRIC = "asymmetric"
MODES = (ALIGN_CORNERS, HALF_PIXEL, PYTORCH_HALF_PIXEL, ASYMMETRIC)

_REMAP_STEPS = 32  # OpenCV's remap rounds source coordinates to 1/32 of a pixel (INTER_TAB_SIZE)
_REMAP_MAX_SIDE = 32767
_REMAP_MAX_CHANNELS = 512
_REMAP_ROW = 1024


@dataclass(frozen=True)
class Axis:
    """For each output position along one axis: the two source positions and the weight of the second."""

    lo: np.ndarray  # int64
    hi: np.ndarray  # int64
    weight: np.ndarray  # float32 in [0, 1]

    def every(self, stride: int) -> Axis:
        """Every `stride`-th output position, from the first."""
        return Axis(self.lo[::stride], self.hi[::stride], self.weight[::stride])

    @property
    def source(self) -> np.ndarray:
        """float32 source coordinate of each output position."""
        return (self.lo + self.weight).astype(np.float32)

    def on_remap_grid(self) -> bool:
        """Whether OpenCV's remap interpolates at exactly these positions: every weight a multiple of 1/32 (as for
        2×, 4× and 8× half-pixel enlargement) and the source short enough for its coordinates."""
        steps = self.weight.astype(np.float64) * _REMAP_STEPS
        return bool(np.all(steps == np.round(steps))) and int(self.hi.max(initial=0)) < _REMAP_MAX_SIDE


def _remappable(pixels: np.ndarray, rows: Axis, cols: Axis) -> bool:
    return pixels.shape[2] <= _REMAP_MAX_CHANNELS and rows.on_remap_grid() and cols.on_remap_grid()


def _remap(pixels: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear h×w×C `pixels` at float32 source positions (x, y) of any matching shape: shape + (C,)."""
    return cv2.remap(pixels, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(*x.shape, -1)


def source_axis(out_len: int, in_len: int, mode: str, scale: float | None = None) -> Axis:
    """Source coordinates as ONNX `Resize` (linear) computes them. `scale` is the one given to Resize, when it was
    given scales rather than sizes; otherwise out_len / in_len."""
    if mode not in MODES:
        raise ValueError(f"unsupported coordinate mode {mode!r}")
    x = np.arange(out_len, dtype=np.float64)
    scale = float(scale) if scale else out_len / in_len
    if mode == ALIGN_CORNERS:
        src = x * (in_len - 1) / (out_len - 1) if out_len > 1 else np.zeros_like(x)
    elif mode == ASYMMETRIC:
        src = x / scale
    elif mode == PYTORCH_HALF_PIXEL and out_len == 1:
        src = np.zeros_like(x)
    else:
        src = (x + 0.5) / scale - 0.5
    src = np.clip(src, 0, in_len - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, in_len - 1)
    return Axis(lo, hi, (src - lo).astype(np.float32))


def interpolate(scores: np.ndarray, rows: Axis, cols: Axis) -> np.ndarray:
    """Bilinear C×len(rows)×len(cols) scores (for small grids such as a subsampled one)."""
    if scores.dtype == np.float32 and _remappable(scores.transpose(1, 2, 0), rows, cols) \
            and max(len(rows.lo), len(cols.lo)) < _REMAP_MAX_SIDE:
        pixels = np.ascontiguousarray(scores.transpose(1, 2, 0))
        x, y = np.meshgrid(cols.source, rows.source)
        return np.ascontiguousarray(_remap(pixels, x, y).transpose(2, 0, 1))
    wy = rows.weight[None, :, None]
    along_rows = scores[:, rows.lo] * (1 - wy) + scores[:, rows.hi] * wy
    wx = cols.weight[None, None, :]
    return along_rows[:, :, cols.lo] * (1 - wx) + along_rows[:, :, cols.hi] * wx


def resize_argmax(scores: np.ndarray, rows: Axis, cols: Axis) -> np.ndarray:
    """uint8 len(rows)×len(cols) arg-max over C of the bilinear enlargement of C×h×w `scores`."""
    pixels = np.ascontiguousarray(scores.transpose(1, 2, 0))  # h×w×C: a pixel's scores are one fetch
    top = pixels.argmax(axis=2).astype(np.uint8)
    top_lo = top[rows.lo]
    top_hi = top[rows.hi]
    index = top_lo[:, cols.lo]
    mixed = index != top_lo[:, cols.hi]
    mixed |= index != top_hi[:, cols.lo]
    mixed |= index != top_hi[:, cols.hi]
    ys, xs = np.nonzero(mixed)
    if len(ys) and pixels.dtype == np.float32 and _remappable(pixels, rows, cols):
        count = len(ys)
        padded = -(-count // _REMAP_ROW) * _REMAP_ROW
        x = np.zeros(padded, np.float32)
        y = np.zeros(padded, np.float32)
        x[:count], y[:count] = cols.source[xs], rows.source[ys]
        mixed_scores = _remap(pixels, x.reshape(-1, _REMAP_ROW), y.reshape(-1, _REMAP_ROW)).reshape(padded, -1)
        index[ys, xs] = mixed_scores[:count].argmax(axis=1)
    elif len(ys):
        y0, y1, wy = rows.lo[ys], rows.hi[ys], rows.weight[ys, None]
        x0, x1, wx = cols.lo[xs], cols.hi[xs], cols.weight[xs, None]
        upper = pixels[y0, x0] * (1 - wx) + pixels[y0, x1] * wx
        lower = pixels[y1, x0] * (1 - wx) + pixels[y1, x1] * wx
        index[ys, xs] = (upper * (1 - wy) + lower * wy).argmax(axis=1)
    return index
