"""Heatmaps as QImages: the turbo colormap as a 256-entry lookup table.

The table is a constant (no matplotlib in the workstation): importing matplotlib to sample it
cost ~100-250 ms of GIL on the first heatmap, the moment the radiologist waits for the first
draft. Rendering is numpy indexing plus one Qt smooth scale, no per-pixel Python.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

DEFAULT_COLORMAP = "turbo"
# Google's Turbo (Apache-2.0), as matplotlib samples it at 256 steps: RGB bytes, low to high.
_TURBO_RGB = bytes.fromhex(
    "30123b32154333184a341b51351e5836215f37246638276d392a733a2d793b2f803c32863d358b3e38913f3b973f3e9c"
    "4040a24143a74146ac4249b1424bb5434eba4451bf4454c34456c74559cb455ccf455ed34661d64664da4666dd4669e0"
    "466be3476ee64771e94773eb4776ee4778f0477bf2467df44680f64682f84685fa4687fb458afc458cfd448ffe4391fe"
    "4294ff4196ff4099ff3e9bfe3d9efe3ba0fd3aa3fc38a5fb37a8fa35abf833adf731aff52fb2f42eb4f22cb7f02ab9ee"
    "28bceb27bee925c0e723c3e422c5e220c7df1fc9dd1ecbda1ccdd81bd0d51ad2d21ad4d019d5cd18d7ca18d9c818dbc5"
    "18ddc218dec018e0bd19e2bb19e3b91ae4b61ce6b41de7b21fe9af20eaac22ebaa25eca727eea42aefa12cf09e2ff19b"
    "32f29835f39438f4913cf58e3ff68a43f78746f8844af8804ef97d52fa7a55fa7659fb735dfc6f61fc6c65fd6969fd66"
    "6dfe6271fe5f75fe5c79fe597dff5680ff5384ff5188ff4e8bff4b8fff4992ff4796fe4499fe429cfe409ffd3fa1fd3d"
    "a4fc3ca7fc3aa9fb39acfb38affa37b1f936b4f836b7f735b9f635bcf534bef434c1f334c3f134c6f034c8ef34cbed34"
    "cdec34d0ea34d2e935d4e735d7e535d9e436dbe236dde037dfdf37e1dd37e3db38e5d938e7d739e9d539ebd339ecd13a"
    "eecf3aefcd3af1cb3af2c93af4c73af5c53af6c33af7c13af8be39f9bc39faba39fbb838fbb637fcb336fcb136fdae35"
    "fdac34fea933fea732fea431fea130fe9e2ffe9b2dfe992cfe962bfe932afe9029fd8d27fd8a26fc8725fc8423fb8122"
    "fb7e21fa7b1ff9781ef9751df8721cf76f1af66c19f56918f46617f36315f26014f15d13f05b12ef5811ed5510ec530f"
    "eb500eea4e0de84b0ce7490ce5470be4450ae2430ae14109df3f08dd3d08dc3b07da3907d83706d63506d43305d23105"
    "d02f05ce2d04cc2b04ca2a04c82803c52603c32503c12302be2102bc2002b91e02b71d02b41b01b21a01af1801ac1701"
    "a91601a71401a41301a112019e10019b0f01980e01950d01920b018e0a018b09028808028507028106027e05027a0403"
)
COLORMAPS = {"turbo": _TURBO_RGB}
# Values below this fraction of the maximum stay fully transparent: the image shows through
# where the model did not look, instead of a blue wash over the whole radiograph.
TRANSPARENT_BELOW = 0.15
MAX_RENDER_SIDE = 512  # heatmaps are coarse grids; 512 px is smooth at any zoom


@lru_cache(maxsize=8)
def colormap_lut(name: str = DEFAULT_COLORMAP) -> np.ndarray:
    """[256, 4] uint8 RGBA; alpha ramps up from TRANSPARENT_BELOW so weak attention fades out."""
    rgba = np.empty((256, 4), dtype=np.uint8)
    rgba[:, :3] = np.frombuffer(COLORMAPS[name], dtype=np.uint8).reshape(256, 3)
    ramp = np.clip((np.linspace(0.0, 1.0, 256) - TRANSPARENT_BELOW) / (1.0 - TRANSPARENT_BELOW), 0.0, 1.0)
    rgba[:, 3] = (np.sqrt(ramp) * 255.0).round().astype(np.uint8)
    return rgba


@lru_cache(maxsize=8)
def _color_table(name: str) -> tuple[int, ...]:
    return tuple(QColor(*(int(c) for c in row)).rgba() for row in colormap_lut(name))


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
