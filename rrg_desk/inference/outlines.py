"""Organ outlines: the detector's box-relative mask probabilities -> one polygon in image pixels."""
from __future__ import annotations

import contourpy
import numpy as np

Point = tuple[float, float]


def _area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def mask_outline(mask: np.ndarray, box: tuple[float, float, float, float], threshold: float = 0.5
                 ) -> tuple[Point, ...]:
    """The largest closed contour of `mask` (an S x S probability map over `box`) at
    `threshold`, as (x, y) points in the box's pixel coordinates; () when nothing reaches it."""
    mask = np.asarray(mask, dtype=np.float64)
    if mask.ndim != 2 or mask.size == 0 or not np.isfinite(mask).all() or mask.max() < threshold:
        return ()
    padded = np.pad(mask, 1)  # a zero border closes contours that touch the box edge
    lines = contourpy.contour_generator(z=padded, line_type=contourpy.LineType.Separate).lines(threshold)
    closed = [line for line in lines if len(line) >= 4]
    if not closed:
        return ()
    largest = max(closed, key=_area)
    x0, y0, x1, y1 = box
    rows, cols = mask.shape
    # padded index k is mask cell k - 1, whose centre sits at (k - 1 + 0.5) / size of the box
    xs = x0 + (largest[:, 0] - 0.5) / cols * (x1 - x0)
    ys = y0 + (largest[:, 1] - 0.5) / rows * (y1 - y0)
    return tuple((round(float(x), 2), round(float(y), 2)) for x, y in zip(xs, ys))
