"""The outline refiner: its crops, its U-Net, and how the detector follows its outlines."""
from __future__ import annotations

import pytest
import torch

from rrg_desk.models.detector import DetectorConfig, RegionDetector
from rrg_desk.models.efficientnet_lite import EfficientNetLiteFeatures
from rrg_desk.models.outline_refiner import OutlineRefiner, OutlineRefinerConfig, crop, grow_boxes

ORGANS = ["right_lung", "left_lung", "heart"]

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _refiner(**overrides) -> OutlineRefiner:
    torch.manual_seed(0)
    return OutlineRefiner(OutlineRefinerConfig.from_dict({"regions": ORGANS, "crop_size": 32} | overrides))


def test_a_shallow_efficientnet_cut_keeps_only_the_stages_it_returns():
    full = EfficientNetLiteFeatures.named("tf_efficientnet_lite0")
    cut = EfficientNetLiteFeatures.named("tf_efficientnet_lite0", feature_stages=(0, 1, 2, 4))
    assert len(full.blocks) == 7 and len(cut.blocks) == 5
    assert cut.feature_channels == [16, 24, 40, 112]
    maps = cut(torch.zeros(1, 1, 64, 64))
    assert [m.shape[-1] for m in maps] == [32, 16, 8, 4]
    assert set(cut.state_dict()) < set(full.state_dict())  # same names: ImageNet weights map by key


def test_the_unet_returns_one_map_per_region_at_half_the_crop():
    refiner = _refiner().eval()
    logits = refiner(torch.zeros(5, 1, 32, 32))
    assert logits.shape == (5, len(ORGANS), 16, 16)


def test_crops_are_the_grown_boxes_resampled():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    grown = grow_boxes(boxes, 0.25)
    assert grown.tolist()[0] == [5.0, 10.0, 35.0, 70.0]
    image = torch.zeros(1, 80, 80)
    image[0, 20:60, 10:30] = 1.0  # the box's content
    crops = crop(image, grown, 30)
    assert crops.shape == (1, 1, 30, 30)
    inside = crops[0, 0, 6:24, 6:24]  # the middle of the crop is the box (5/30 margin on each side)
    assert inside.mean() > 0.95 and crops[0, 0, :3].mean() < 0.05


def _detector_with_refiner(weight: float, bias: float) -> RegionDetector:
    torch.manual_seed(0)
    detector = RegionDetector(DetectorConfig.from_dict(DetectorConfig.tiny().to_dict() | {
        "mask_regions": ORGANS, "mask_size": 8, "mask_channels": 8, "mask_layers": 1,
        "min_detection_score": 0.0}))
    refiner = _refiner(context=0.25)
    with torch.no_grad():  # an outline that fills its whole crop: the crop box is its tight box
        refiner.logits.weight.zero_()
        refiner.logits.bias.fill_(bias)
    detector.attach_refiner(refiner, weight)
    return detector.eval()


def test_boxes_follow_the_refiners_outline_by_the_chosen_weight():
    images = torch.randn(1, 1, 64, 64)
    plain = _detector_with_refiner(0.0, 10.0)  # same weights as below (same seed); boxes do not move
    before = plain.detect(images)
    followed = _detector_with_refiner(1.0, 10.0).detect(images)
    indices = plain.config.mask_indices
    expected = grow_boxes(before.boxes[0, indices], 0.25).clamp(0, 64)
    assert torch.allclose(followed.boxes[0, indices], expected, atol=1.5)  # pasted at whole pixels
    others = [i for i in range(len(plain.config.region_names)) if i not in indices]
    assert torch.equal(followed.boxes[0, others], before.boxes[0, others])
    assert followed.masks.shape == (1, len(ORGANS), 8, 8)
    assert followed.masks[..., 1:-1, 1:-1].min() > 0.9  # the outline (its whole crop) fills each box
    empty = _detector_with_refiner(1.0, -10.0).detect(images)  # no outline: the box stays
    assert torch.equal(empty.boxes[0, indices], before.boxes[0, indices]) and empty.masks.max() < 0.01


def test_a_detector_config_with_a_refiner_rebuilds_it_and_loads_strictly():
    detector = _detector_with_refiner(0.5, 0.0)
    config = DetectorConfig.from_dict(detector.config.to_dict())
    assert config.refiner["regions"] == ORGANS and config.refiner_box_weight == 0.5
    rebuilt = RegionDetector(config)
    rebuilt.load_state_dict(detector.state_dict())  # strict: the refiner's weights travel with the detector
    images = torch.randn(1, 1, 64, 64)
    assert torch.equal(rebuilt.eval().detect(images).boxes, detector.detect(images).boxes)


def test_a_refiner_for_other_regions_is_refused():
    detector = RegionDetector(DetectorConfig.from_dict(DetectorConfig.tiny().to_dict() | {
        "mask_regions": ORGANS, "mask_size": 8, "mask_channels": 8, "mask_layers": 1}))
    with pytest.raises(ValueError, match="mask regions"):
        detector.attach_refiner(_refiner(regions=["heart"]), 0.5)
    with pytest.raises(ValueError, match="refiner_box_weight"):
        detector.attach_refiner(_refiner(), 1.5)


def test_outlines_stay_inside_each_image_of_a_padded_batch():
    detector = _detector_with_refiner(1.0, 10.0)  # outlines fill their grown crops, up to the image edge
    images = torch.randn(2, 1, 64, 50)  # the transform pads the width to a multiple of its stride
    boxes = detector.detect(images).boxes
    assert boxes[..., 2].max() <= 50 and boxes[..., 3].max() <= 64 and boxes.min() >= 0
