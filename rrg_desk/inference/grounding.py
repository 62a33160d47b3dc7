"""Sentence heatmaps grounded in their region: the generator's cross-attention over the coarse
image grid spreads beyond the region a sentence is about (a "right lung" sentence can peak over
the mediastinum), so the map is weighted by how much of each pixel the region's box covers."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

GROUNDED_SIZE = 32  # the coarse grid is resampled to this many cells a side (stored with the draft)
OUTSIDE_WEIGHT = 0.1  # attention outside the box keeps a tenth of its weight: context, not focus

RelativeBox = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the frame


def _resampled(heatmap: np.ndarray, size: int) -> np.ndarray:
    grid = torch.as_tensor(np.asarray(heatmap, dtype=np.float32))[None, None]
    return F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)[0, 0].clamp(min=0).numpy()


def box_coverage(box: RelativeBox, size: int) -> np.ndarray:
    """[size, size] share of each cell of a size x size grid that the relative box covers."""
    edges = np.arange(size + 1) / size

    def along(lo: float, hi: float) -> np.ndarray:
        return np.clip(np.minimum(hi, edges[1:]) - np.maximum(lo, edges[:-1]), 0, None) * size

    x0, y0, x1, y1 = (float(np.clip(v, 0.0, 1.0)) for v in box)
    return np.outer(along(y0, y1), along(x0, x1))


def share_in_region(heatmap: np.ndarray, box: RelativeBox, size: int = GROUNDED_SIZE) -> float:
    """The share of the heatmap's mass that lies inside the box (0 for an empty map)."""
    fine = _resampled(heatmap, size)
    total = float(fine.sum())
    return float((fine * box_coverage(box, size)).sum()) / total if total > 0 else 0.0


def ground_in_region(heatmap: np.ndarray, box: RelativeBox, outside_weight: float = OUTSIDE_WEIGHT,
                     size: int = GROUNDED_SIZE) -> np.ndarray:
    """[size, size] heatmap in [0, 1]: the map weighted 1 inside the box and `outside_weight`
    outside (partly covered cells in between), rescaled to a maximum of 1."""
    fine = _resampled(heatmap, size)
    weighted = fine * (outside_weight + (1.0 - outside_weight) * box_coverage(box, size))
    peak = float(weighted.max())
    return (weighted / peak if peak > 0 else weighted).astype(np.float32)
