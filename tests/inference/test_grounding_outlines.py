"""Sentence heatmaps grounded in their region, and organ outlines from the detector's masks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rrg_desk.inference.grounding import box_coverage, ground_in_region, share_in_region
from rrg_desk.inference.outlines import mask_outline
from rrg_desk.inference.pipeline import DraftPipeline, DraftSettings
from rrg_desk.models.regions import SCR_ORGANS
from rrg_desk.reports.draft import RegionResult


def test_outline_of_a_disc_is_one_closed_polygon_inside_its_box():
    yy, xx = np.mgrid[0:28, 0:28]
    disc = ((xx - 13.5) ** 2 + (yy - 13.5) ** 2 <= 10 ** 2).astype(float)
    disc[0:2, 0:2] = 1.0  # a speck: the largest contour wins
    box = (100.0, 200.0, 156.0, 256.0)  # 2 px per mask cell
    outline = mask_outline(disc, box)
    points = np.array(outline)
    assert len(points) > 20 and tuple(points[0]) == tuple(points[-1])
    assert points[:, 0].min() >= 100 and points[:, 0].max() <= 156 and points[:, 1].min() >= 200
    x, y = points[:, 0], points[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    assert area == pytest.approx(np.pi * 20 ** 2, rel=0.1)  # radius 10 cells = 20 px
    assert mask_outline(np.zeros((28, 28)), box) == ()
    assert mask_outline(np.full((28, 28), np.nan), box) == ()


def test_outline_survives_the_draft_round_trip():
    region = RegionResult("heart", (1, 2, 3, 4), 0.9, True, 0.1, outline=((1.0, 2.0), (3.0, 2.0), (1.0, 2.0)))
    again = RegionResult.from_dict(region.to_dict())
    assert again == region
    assert RegionResult.from_dict({k: v for k, v in region.to_dict().items() if k != "outline"}).outline == ()


def test_grounding_moves_a_heatmap_that_peaks_outside_its_box_into_it():
    heat = np.zeros((8, 8), dtype=np.float32)
    heat[3:5, 3:5] = 1.0  # the mediastinum
    heat[2:6, 0:2] = 0.3  # some attention on the right lung
    right_lung = (0.0, 0.1, 0.3, 0.9)
    raw = share_in_region(heat, right_lung)
    grounded = ground_in_region(heat, right_lung)
    assert raw < 0.5
    assert share_in_region(grounded, right_lung) > 0.85 > raw
    assert grounded.max() == pytest.approx(1.0) and grounded.shape == (32, 32)
    peak_row, peak_col = np.unravel_index(grounded.argmax(), grounded.shape)
    assert peak_col / 32 < 0.3  # the peak now sits inside the box
    whole = (0.0, 0.0, 1.0, 1.0)
    assert share_in_region(heat, whole) == pytest.approx(1.0)
    assert box_coverage((0.0, 0.0, 0.5, 1.0), 4).sum() == pytest.approx(8.0)
    assert share_in_region(np.zeros((8, 8)), right_lung) == 0.0


def test_tiny_bundle_drafts_outlines_and_region_grounded_heatmaps(tiny_bundle, study):
    pipeline = DraftPipeline(tiny_bundle, device="cpu")
    detector = pipeline.bundle.detector
    with torch.no_grad():  # a mask head sure of every pixel: the outline traces the box
        detector.mask_head.logits.bias.fill_(8.0)
    raw = pipeline.draft(study, DraftSettings(ground_heatmaps=False))
    grounded = pipeline.draft(study)
    for region in grounded.regions:
        if region.name not in SCR_ORGANS:
            assert region.outline == ()
            continue
        points = np.array(region.outline)
        x0, y0, x1, y1 = region.box
        assert len(points) >= 4
        assert points[:, 0].min() >= x0 - 1 and points[:, 0].max() <= x1 + 1
        assert points[:, 1].min() >= y0 - 1 and points[:, 1].max() <= y1 + 1
    frontal = study.frontal
    boxes = {r.name: r.box for r in grounded.regions}
    assert grounded.sentences and [s.region for s in raw.sentences] == [s.region for s in grounded.sentences]
    for before, after in zip(raw.sentences, grounded.sentences):
        x0, y0, x1, y1 = boxes[after.region]
        relative = (x0 / frontal.width, y0 / frontal.height, x1 / frontal.width, y1 / frontal.height)
        assert share_in_region(after.heatmap, relative) >= share_in_region(before.heatmap, relative) - 1e-6
