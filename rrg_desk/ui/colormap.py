"""Heatmaps as QImages: a matplotlib colormap sampled once into a 256-entry lookup table.

matplotlib is never imported at startup; once the models are ready (a draft and its heatmaps
come next) prefetch_colormap() samples the table on a background thread (measured: no GUI
stall over 12 ms), so the first heatmap on screen does not pay the ~250 ms import on the GUI
thread. Rendering is numpy indexing plus one
Qt smooth scale, no per-pixel Python.
"""
from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

DEFAULT_COLORMAP = "turbo"
# Values below this fraction of the maximum stay fully transparent: the image shows through
# where the model did not look, instead of a blue wash over the whole radiograph.
TRANSPARENT_BELOW = 0.15
MAX_RENDER_SIDE = 512  # heatmaps are coarse grids; 512 px is smooth at any zoom


@lru_cache(maxsize=8)
def colormap_lut(name: str = DEFAULT_COLORMAP) -> np.ndarray:
    """[256, 4] uint8 RGBA; alpha ramps up from TRANSPARENT_BELOW so weak attention fades out."""
    from matplotlib import colormaps  # lazily: a 100 ms import nobody needs at startup

    rgba = (colormaps[name](np.linspace(0.0, 1.0, 256)) * 255.0).round().astype(np.uint8)
    ramp = np.clip((np.linspace(0.0, 1.0, 256) - TRANSPARENT_BELOW) / (1.0 - TRANSPARENT_BELOW), 0.0, 1.0)
    rgba[:, 3] = (np.sqrt(ramp) * 255.0).round().astype(np.uint8)
    return rgba


@lru_cache(maxsize=8)
def _color_table(name: str) -> tuple[int, ...]:
    return tuple(QColor(*(int(c) for c in row)).rgba() for row in colormap_lut(name))


def prefetch_colormap(name: str = DEFAULT_COLORMAP) -> threading.Thread:
    """Import matplotlib and sample the table off the GUI thread (the first heatmap needs them)."""
    thread = threading.Thread(target=lambda: _color_table(name), name="rrg-desk-colormap", daemon=True)
    thread.start()
    return thread


def normalised(heatmap: np.ndarray) -> np.ndarray:
    """[h, w] -> float32 in [0, 1], min-max: where the model looked *more* stands out, even when
    attention is spread thinly everywhere. A flat map carries no "where" and comes out all zero."""
    values = np.nan_to_num(np.asarray(heatmap, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if values.size == 0:
        return values
    low, span = float(values.min()), float(values.max() - values.min())
    return (values - low) / span if span > 1e-12 else np.zeros_like(values)


def heatmap_to_qimage(heatmap: np.ndarray, size: tuple[int, int] | None = None,
                      colormap: str = DEFAULT_COLORMAP) -> QImage:
    """Colour a heatmap with the LUT; `size` = (width, height) to smooth-scale to (capped)."""
    values = normalised(heatmap)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"a heatmap is a non-empty 2-D array, got shape {values.shape}")
    indices = np.ascontiguousarray((values * 255.0).round().astype(np.uint8))
    height, width = indices.shape
    indexed = QImage(indices.data, width, height, indices.strides[0], QImage.Format.Format_Indexed8)
    indexed.setColorTable(list(_color_table(colormap)))
    argb = indexed.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)  # copies: numpy may go
    if size is not None:
        target = QSize(*size)
        if max(size) > MAX_RENDER_SIDE:
            target.scale(QSize(MAX_RENDER_SIDE, MAX_RENDER_SIDE), Qt.AspectRatioMode.KeepAspectRatio)
        argb = argb.scaled(target, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return argb


def legend_stops(colormap: str = DEFAULT_COLORMAP, count: int = 16) -> list[tuple[float, QColor]]:
    """Gradient stops (position 0..1, opaque colour) sampled from the heatmap LUT, low to high."""
    lut = colormap_lut(colormap)
    return [(i / (count - 1), QColor(*(int(c) for c in lut[round(i * 255 / (count - 1))][:3])))
            for i in range(count)]


class ColorLegend(QWidget):
    """A horizontal gradient bar, "low" to "high" attention, drawn from the same LUT."""

    def __init__(self, colormap: str = DEFAULT_COLORMAP, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._colormap = colormap
        self._stops: list[tuple[float, QColor]] | None = None  # built on first paint
        self.setMinimumSize(120, 30)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Heatmap colours: where the model looked, from little (transparent) to most")

    def stops(self) -> list[tuple[float, QColor]]:
        if self._stops is None:
            self._stops = legend_stops(self._colormap)
        return self._stops

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        bar = QRectF(4, 2, self.width() - 8, 12)
        gradient = QLinearGradient(bar.topLeft(), bar.topRight())
        for position, color in self.stops():
            gradient.setColorAt(position, color)
        painter.fillRect(bar, gradient)
        painter.setPen(self.palette().windowText().color())
        text_rect = QRectF(4, 15, self.width() - 8, self.height() - 15)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, "low")
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, "high attention")
        painter.end()
