"""Measurements read off the detector's boxes on a frontal view, and the findings they score.

The cardiothoracic ratio (the heart's width over the thorax's, here the outer edges of the two
lung boxes) is how radiologists call cardiomegaly on a frontal film (above about 0.5). Read off
the shipped detector's boxes it separated Cardiomegaly at AUC 0.91 on the NIH patients outside
the DarkCovidNet subset (train + val, 144 measured, 8 positives, nothing fitted), where a probe on image
features reached 0.56: the finding depends on a proportion that a global image feature carries
poorly. A card can therefore score a finding from a measurement (its
`classification.measurements`: {finding: {"measure", "scale", "bias"}}, probability
sigmoid(scale * value + bias) before the usual calibration).

Torch-free: boxes are any (x0, y0, x1, y1) sequences in one frame; ratios do not depend on it
as long as horizontal and vertical scales are each uniform.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

CARDIOTHORACIC_RATIO = "cardiothoracic_ratio"
MEASURES = (CARDIOTHORACIC_RATIO,)
MEASURE_LABELS = {CARDIOTHORACIC_RATIO: "cardiothoracic ratio"}

Box = Sequence[float]


def cardiothoracic_ratio(boxes: Mapping[str, Box]) -> float | None:
    """Heart width / thorax width from the heart and both lung boxes; None if one is missing or
    the thorax has no width."""
    if not {"heart", "right_lung", "left_lung"} <= boxes.keys():
        return None
    heart, right, left = boxes["heart"], boxes["right_lung"], boxes["left_lung"]
    thorax = max(right[2], left[2]) - min(right[0], left[0])
    if thorax <= 0:
        return None
    return float(heart[2] - heart[0]) / float(thorax)


def measure(boxes: Mapping[str, Box]) -> dict[str, float]:
    """Every measurement the boxes allow: {measure name: value}. Pass only regions the detector
    found (not its fall-back mean boxes), so nothing is measured off a guess."""
    values = {CARDIOTHORACIC_RATIO: cardiothoracic_ratio(boxes)}
    return {name: value for name, value in values.items() if value is not None}


def measured_probability(value: float, scale: float, bias: float) -> float:
    """The finding's uncalibrated probability from its measurement: sigmoid(scale * value + bias)."""
    z = scale * value + bias
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
