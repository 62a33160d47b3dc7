"""derive_region_boxes on real JSRT/SCR masks and on synthetic ones with known answers."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rrg_desk.models.regions import (
    REGION_NAMES, SCR_ORGANS, TYPICAL_RELATIVE_BOXES, WHOLE_IMAGE, RegionMaskError, derive_region_boxes,
)

JSRT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "jsrt_scr"
# nodule and non-nodule cases from every split
CASE_IDS = ["JPCLN003", "JPCNN010", "JPCLN002", "JPCNN001", "JPCLN154"]


def _masks(case_id: str) -> dict[str, np.ndarray]:
    return {organ: np.array(Image.open(JSRT / "masks" / organ / f"{case_id}.png")) for organ in SCR_ORGANS}


def _inside(inner, outer, tolerance: float = 0.0) -> bool:
    return (inner[0] >= outer[0] - tolerance and inner[1] >= outer[1] - tolerance
            and inner[2] <= outer[2] + tolerance and inner[3] <= outer[3] + tolerance)


def _centre_x(box) -> float:
    return (box[0] + box[2]) / 2


@pytest.fixture(scope="module", params=CASE_IDS)
def real_case(request):
    if not (JSRT / "masks").is_dir():
        pytest.skip("JSRT/SCR data not available")
    masks = _masks(request.param)
    return request.param, masks, derive_region_boxes(masks)


def test_every_region_gets_a_valid_box_inside_the_frame(real_case):
    _, masks, boxes = real_case
    height, width = masks["heart"].shape
    assert list(boxes) == list(REGION_NAMES)
    for name, (x0, y0, x1, y1) in boxes.items():
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height, name
        assert all(isinstance(v, float) for v in (x0, y0, x1, y1))
    assert boxes[WHOLE_IMAGE] == (0.0, 0.0, float(width), float(height))


def test_organ_boxes_match_the_published_scr_boxes(real_case):
    case_id, _, boxes = real_case
    published = json.loads((JSRT / "boxes.json").read_text())["boxes"][case_id]
    for organ in SCR_ORGANS:
        x_min, y_min, x_max, y_max = published[organ]
        # boxes.json counts the last pixel (inclusive); ours are pixel edges (exclusive).
        assert np.allclose(boxes[organ], (x_min, y_min, x_max + 1, y_max + 1), atol=1.0), organ


def test_derived_regions_nest_as_documented(real_case):
    _, _, boxes = real_case
    for side in ("right", "left"):
        lung = boxes[f"{side}_lung"]
        zones = [boxes[f"{side}_{zone}_zone"] for zone in ("upper", "mid", "lower")]
        for zone in zones:
            assert _inside(zone, lung)
        # the thirds stack from top to bottom and together span the lung
        assert zones[0][1] == lung[1] and zones[2][3] == lung[3]
        assert zones[0][3] <= zones[1][1] + 1 and zones[1][3] <= zones[2][1] + 1
        assert _inside(boxes[f"{side}_apical_zone"], zones[0])
        assert _inside(boxes[f"{side}_costophrenic_angle"], zones[2])
        diaphragm = boxes[f"{side}_hemidiaphragm"]
        assert diaphragm[1] < lung[3] < diaphragm[3]  # the band straddles the lung's lower border
    assert _inside(boxes["heart"], boxes["mediastinum"])
    assert _inside(boxes["upper_mediastinum"], boxes["mediastinum"])
    assert boxes["upper_mediastinum"][3] <= boxes["heart"][1] + 1  # above the heart


def test_sides_follow_the_radiological_convention(real_case):
    _, _, boxes = real_case
    # patient's right is image left: every right-sided region lies left of its left twin
    for name in REGION_NAMES:
        if name.startswith("right_"):
            assert _centre_x(boxes[name]) < _centre_x(boxes["left_" + name[len("right_"):]]), name
    # costophrenic angles sit at the lateral edge of the lung, mediastinum between the lungs
    assert boxes["right_costophrenic_angle"][0] == boxes["right_lower_zone"][0]
    assert boxes["left_costophrenic_angle"][2] == boxes["left_lower_zone"][2]
    assert _centre_x(boxes["right_lung"]) < _centre_x(boxes["upper_mediastinum"]) < _centre_x(boxes["left_lung"])


def _rectangle(shape, x0, y0, x1, y1) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    mask[y0:y1, x0:x1] = 255
    return mask


def synthetic_masks() -> dict[str, np.ndarray]:
    shape = (400, 400)
    return {"right_lung": _rectangle(shape, 40, 40, 160, 340), "left_lung": _rectangle(shape, 240, 40, 360, 340),
            "heart": _rectangle(shape, 150, 200, 280, 320), "right_clavicle": _rectangle(shape, 80, 60, 190, 90),
            "left_clavicle": _rectangle(shape, 210, 60, 320, 90)}


def test_rectangular_lungs_give_exact_thirds_and_documented_bands():
    boxes = derive_region_boxes(synthetic_masks())
    assert boxes["right_upper_zone"] == (40.0, 40.0, 160.0, 140.0)
    assert boxes["right_mid_zone"] == (40.0, 140.0, 160.0, 240.0)
    assert boxes["left_lower_zone"] == (240.0, 240.0, 360.0, 340.0)
    assert boxes["right_apical_zone"] == (40.0, 40.0, 160.0, 90.0)  # down to the clavicle's lower edge
    assert boxes["right_costophrenic_angle"] == (40.0, 280.0, 88.0, 340.0)  # lateral 40% x lower 60%
    assert boxes["left_costophrenic_angle"] == (312.0, 280.0, 360.0, 340.0)
    assert boxes["right_hemidiaphragm"] == pytest.approx((40.0, 328.0, 160.0, 352.0))  # 4% of 300 px
    assert boxes["upper_mediastinum"] == (160.0, 40.0, 240.0, 200.0)
    assert boxes["mediastinum"] == (150.0, 40.0, 280.0, 320.0)


def test_apical_level_is_clipped_when_the_clavicle_is_far_below_the_apex():
    masks = synthetic_masks()
    masks["right_clavicle"] = _rectangle((400, 400), 80, 200, 190, 230)
    assert derive_region_boxes(masks)["right_apical_zone"][3] == 40 + 300 / 4


def test_bad_masks_are_refused():
    masks = synthetic_masks()
    with pytest.raises(RegionMaskError, match="heart"):
        derive_region_boxes({k: v for k, v in masks.items() if k != "heart"})
    with pytest.raises(RegionMaskError, match="empty"):
        derive_region_boxes(masks | {"left_lung": np.zeros((400, 400), np.uint8)})
    with pytest.raises(RegionMaskError, match="shape"):
        derive_region_boxes(masks | {"heart": np.zeros((10, 10), np.uint8)})


def test_empty_clavicle_falls_back_to_the_apical_zone():
    masks = synthetic_masks() | {"left_clavicle": np.zeros((400, 400), np.uint8)}
    boxes = derive_region_boxes(masks)
    assert boxes["left_clavicle"] == boxes["left_apical_zone"]


def test_typical_boxes_cover_the_vocabulary_and_are_relative():
    assert set(TYPICAL_RELATIVE_BOXES) == set(REGION_NAMES)
    for x0, y0, x1, y1 in TYPICAL_RELATIVE_BOXES.values():
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
