"""The anatomical region vocabulary (fixed order = detector class order).

Patient's right is image left. The five SCR organs come first; the derived regions
follow Chest ImaGenome / RGRG in spirit; `whole_image` is the full frame, for
sentences that name no region ("No pneumothorax.").
"""
from __future__ import annotations

import numpy as np

SCR_ORGANS: tuple[str, ...] = ("right_lung", "left_lung", "heart", "right_clavicle", "left_clavicle")

DERIVED_REGIONS: tuple[str, ...] = (
    "right_upper_zone",
    "right_mid_zone",
    "right_lower_zone",
    "left_upper_zone",
    "left_mid_zone",
    "left_lower_zone",
    "right_apical_zone",
    "left_apical_zone",
    "right_costophrenic_angle",
    "left_costophrenic_angle",
    "right_hemidiaphragm",
    "left_hemidiaphragm",
    "mediastinum",
    "upper_mediastinum",  # includes the trachea
)

WHOLE_IMAGE = "whole_image"

REGION_NAMES: tuple[str, ...] = SCR_ORGANS + DERIVED_REGIONS + (WHOLE_IMAGE,)


def region_label(name: str) -> str:
    """A region's name as the overlays, the key image and messages show it ("right lung")."""
    return name.replace("_", " ")


# --- Region boxes derived from the five SCR organ masks ------------------------------------
Box = tuple[float, float, float, float]

_ZONE_NAMES = ("upper", "mid", "lower")


class RegionMaskError(ValueError):
    """An organ mask is missing, empty or has the wrong shape."""


def _mask_box(mask: np.ndarray) -> Box:
    """Pixel-edge box of the mask's foreground: [x0, y0, x1, y1] with x1 = last column + 1."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def _box_of_rows(mask: np.ndarray, y0: int, y1: int) -> Box:
    """Box of the mask's foreground restricted to rows [y0, y1); the rows' full span if empty."""
    band = mask[y0:y1]
    cols = np.flatnonzero(band.any(axis=0))
    rows = np.flatnonzero(band.any(axis=1))
    if cols.size == 0:
        return _mask_box(mask)[0], float(y0), _mask_box(mask)[2], float(y1)
    return float(cols[0]), float(y0 + rows[0]), float(cols[-1] + 1), float(y0 + rows[-1] + 1)


def _box_inside(mask: np.ndarray, window: Box) -> Box:
    """Foreground box of the mask inside `window` (integer pixel edges); the window if empty."""
    x0, y0, x1, y1 = (int(round(v)) for v in window)
    sub = mask[y0:y1, x0:x1]
    if not sub.any():
        return window
    bx0, by0, bx1, by1 = _mask_box(sub)
    return x0 + bx0, y0 + by0, x0 + bx1, y0 + by1


def _with_min_size(box: Box, width: int, height: int, min_size: float = 2.0) -> Box:
    """Grow a degenerate box symmetrically to `min_size` and clip it to the frame."""
    x0, y0, x1, y1 = box
    if x1 - x0 < min_size:
        cx = (x0 + x1) / 2
        x0, x1 = cx - min_size / 2, cx + min_size / 2
    if y1 - y0 < min_size:
        cy = (y0 + y1) / 2
        y0, y1 = cy - min_size / 2, cy + min_size / 2
    x0, x1 = min(max(x0, 0.0), width - min_size), min(max(x1, min_size), float(width))
    y0, y1 = min(max(y0, 0.0), height - min_size), min(max(y1, min_size), float(height))
    return float(x0), float(y0), float(x1), float(y1)


def _medial_edges(lung: np.ndarray, rows: np.ndarray, image_left: bool) -> np.ndarray:
    """Per row, the lung's medial border column (pixel edge); rows without lung are skipped.

    The right lung lies on the image's left, so its medial border is its rightmost pixel.
    """
    edges = []
    for row in rows:
        cols = np.flatnonzero(lung[row])
        if cols.size:
            edges.append(cols[-1] + 1 if image_left else cols[0])
    return np.asarray(edges, dtype=float)


def _median_gap(right_lung: np.ndarray, left_lung: np.ndarray, rows: np.ndarray,
                heart: Box) -> tuple[float, float]:
    """Columns between the lungs' median medial borders over `rows` (the heart's span if the
    lungs overlap in projection or are absent from those rows)."""
    right_medial = _medial_edges(right_lung, rows, image_left=True)
    left_medial = _medial_edges(left_lung, rows, image_left=False)
    x0 = float(np.median(right_medial)) if right_medial.size else heart[0]
    x1 = float(np.median(left_medial)) if left_medial.size else heart[2]
    return (x0, x1) if x1 > x0 else (heart[0], heart[2])


def _lung_regions(side: str, lung: np.ndarray, clavicle: np.ndarray) -> dict[str, Box]:
    """Zones, apical zone, costophrenic angle and hemidiaphragm of one lung."""
    _left, ly0, _right, ly1 = _mask_box(lung)
    height = ly1 - ly0
    lateral_is_left = side == "right"  # patient's right lung is on the image's left
    boxes: dict[str, Box] = {}
    cuts = [int(round(ly0 + height * k / 3)) for k in range(4)]
    for name, top, bottom in zip(_ZONE_NAMES, cuts[:-1], cuts[1:]):
        boxes[f"{side}_{name}_zone"] = _box_of_rows(lung, top, bottom)

    # Apical zone: the lung above the clavicle's lower edge, kept between 1/8 and 1/4 of the lung.
    clavicle_bottom = _mask_box(clavicle)[3] if clavicle.any() else ly0 + height / 4
    apex_bottom = int(round(min(max(clavicle_bottom, ly0 + height / 8), ly0 + height / 4)))
    boxes[f"{side}_apical_zone"] = _box_of_rows(lung, int(ly0), apex_bottom)

    # Costophrenic angle: the lateral 40% x lower 60% corner of the lower zone, tightened to the lung.
    zx0, zy0, zx1, zy1 = boxes[f"{side}_lower_zone"]
    corner_w, corner_h = 0.4 * (zx1 - zx0), 0.6 * (zy1 - zy0)
    window = (zx0, zy1 - corner_h, zx0 + corner_w, zy1) if lateral_is_left else \
        (zx1 - corner_w, zy1 - corner_h, zx1, zy1)
    boxes[f"{side}_costophrenic_angle"] = _box_inside(lung, window)

    # Hemidiaphragm: a band along the lung's lower border (the dome): the columns whose lowest
    # lung pixel lies in the lowest sixth of the lung (this drops the medial columns that end
    # on the heart), from the highest to the lowest such border row, padded by 4% of the height.
    cols = np.flatnonzero(lung.any(axis=0))
    bottoms = np.array([np.flatnonzero(lung[:, c])[-1] + 1 for c in cols], dtype=float)
    in_base = bottoms >= ly0 + height * 5 / 6
    dome_cols, dome_bottoms = (cols[in_base], bottoms[in_base]) if in_base.any() else (cols, bottoms)
    pad = 0.04 * height
    boxes[f"{side}_hemidiaphragm"] = (float(dome_cols[0]), dome_bottoms.min() - pad,
                                      float(dome_cols[-1] + 1), dome_bottoms.max() + pad)
    return boxes


def derive_region_boxes(masks: dict[str, np.ndarray]) -> dict[str, Box]:
    """Boxes [x0, y0, x1, y1] (pixel edges, float) for every name in REGION_NAMES.

    `masks` maps the five SCR organs to 2-D arrays of one shape (0/255 or bool); patient's
    right is image left. Rules:
    - organs (lungs, heart, clavicles): the bounding box of the mask's foreground.
    - upper/mid/lower zone: the lung's vertical extent cut into thirds; each zone's box is the
      lung foreground inside its band of rows, so zones nest in their lung's box.
    - apical zone: the lung above the clavicle's lower edge, that level clipped to between 1/8
      and 1/4 of the lung height below the apex; nests in the upper zone.
    - costophrenic angle: the lateral 40% (width) x lower 60% (height) corner of the lower
      zone's box, tightened to the lung foreground inside it; nests in the lower zone.
    - hemidiaphragm: a band along the lung's lower border (the dome): the columns whose lowest
      lung pixel lies in the lowest sixth of the lung, from the highest to the lowest such
      border row, padded by 4% of the lung height (so it straddles the lung's lower edge).
    - upper_mediastinum (incl. trachea): rows from the higher apex to the heart's top, columns
      between the lungs' median medial borders over those rows.
    - mediastinum: rows from the higher apex to the heart's bottom, columns between the lungs'
      median medial borders over those rows, widened to hold the heart and the upper
      mediastinum (both nest in it).
    - whole_image: the full frame.
    Degenerate boxes are grown to at least 2 px and everything is clipped to the frame.
    Raises RegionMaskError when a mask is missing, empty or differs in shape.
    """
    missing = [organ for organ in SCR_ORGANS if organ not in masks]
    if missing:
        raise RegionMaskError(f"missing organ masks: {', '.join(missing)}")
    arrays = {organ: np.asarray(masks[organ]) > 0 for organ in SCR_ORGANS}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise RegionMaskError(f"organ masks must be 2-D and of one shape, got {sorted(shapes)}")
    for organ in ("right_lung", "left_lung", "heart"):
        if not arrays[organ].any():
            raise RegionMaskError(f"the {organ} mask is empty")
    height, width = next(iter(shapes))

    boxes: dict[str, Box] = {}
    for organ in SCR_ORGANS:
        if arrays[organ].any():
            boxes[organ] = _mask_box(arrays[organ])
    for side in ("right", "left"):
        boxes.update(_lung_regions(side, arrays[f"{side}_lung"], arrays[f"{side}_clavicle"]))
    for side in ("right", "left"):  # an empty clavicle mask: fall back to the apical zone's box
        boxes.setdefault(f"{side}_clavicle", boxes[f"{side}_apical_zone"])

    right, left, heart = boxes["right_lung"], boxes["left_lung"], boxes["heart"]
    apex = int(min(right[1], left[1]))
    upper_rows = np.arange(apex, max(int(heart[1]), apex + 2))
    up_x0, up_x1 = _median_gap(arrays["right_lung"], arrays["left_lung"], upper_rows, heart)
    boxes["upper_mediastinum"] = (up_x0, float(apex), up_x1, float(upper_rows[-1] + 1))
    # The median gap rather than the extreme one: near the apices and the bases the lungs'
    # medial borders swing laterally, which would make the mediastinum absurdly wide.
    gap_x0, gap_x1 = _median_gap(arrays["right_lung"], arrays["left_lung"],
                                 np.arange(apex, int(heart[3])), heart)
    boxes["mediastinum"] = (min(gap_x0, up_x0, heart[0]), float(apex),
                            max(gap_x1, up_x1, heart[2]), max(heart[3], upper_rows[-1] + 1.0))

    boxes[WHOLE_IMAGE] = (0.0, 0.0, float(width), float(height))
    return {name: _with_min_size(boxes[name], width, height) for name in REGION_NAMES}


# Mean box per region relative to the frame, from derive_region_boxes over the 172 JSRT
# training masks: the detector's initial prior for regions it does not find (the trainer
# replaces it with the mean of its own training boxes).
TYPICAL_RELATIVE_BOXES: dict[str, Box] = {
    "right_lung": (0.102, 0.082, 0.458, 0.839),
    "left_lung": (0.559, 0.081, 0.905, 0.841),
    "heart": (0.384, 0.449, 0.763, 0.763),
    "right_clavicle": (0.227, 0.113, 0.449, 0.218),
    "left_clavicle": (0.557, 0.103, 0.778, 0.217),
    "right_upper_zone": (0.158, 0.082, 0.458, 0.334),
    "right_mid_zone": (0.128, 0.334, 0.442, 0.587),
    "right_lower_zone": (0.102, 0.587, 0.401, 0.839),
    "left_upper_zone": (0.559, 0.081, 0.848, 0.334),
    "left_mid_zone": (0.603, 0.334, 0.879, 0.587),
    "left_lower_zone": (0.707, 0.587, 0.905, 0.841),
    "right_apical_zone": (0.192, 0.082, 0.457, 0.218),
    "left_apical_zone": (0.559, 0.081, 0.816, 0.217),
    "right_costophrenic_angle": (0.103, 0.688, 0.220, 0.839),
    "left_costophrenic_angle": (0.826, 0.689, 0.905, 0.841),
    "right_hemidiaphragm": (0.103, 0.687, 0.282, 0.869),
    "left_hemidiaphragm": (0.752, 0.698, 0.905, 0.870),
    "mediastinum": (0.384, 0.077, 0.763, 0.763),
    "upper_mediastinum": (0.445, 0.077, 0.599, 0.449),
    WHOLE_IMAGE: (0.0, 0.0, 1.0, 1.0),
}
