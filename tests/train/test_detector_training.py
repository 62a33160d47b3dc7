"""The detector's training parts: augmentation that moves image, boxes and masks together,
the ImageNet start of its EfficientNet body, Dice."""
from __future__ import annotations

import random

import pytest
import timm
import torch

from rrg_desk.models.detector import DetectorConfig, RegionDetector
from train.tasks.detector_task import _augment, dice_score, load_imagenet_body


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _tight(mask: torch.Tensor) -> list[float]:
    rows, cols = mask.any(dim=1).nonzero()[:, 0], mask.any(dim=0).nonzero()[:, 0]
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


def test_augmentation_moves_image_boxes_and_masks_together():
    random.seed(3)
    size = 128
    box = torch.tensor([[30.0, 20.0, 70.0, 100.0]])
    mask = torch.zeros(1, size, size, dtype=torch.uint8)
    mask[0, 20:100, 30:70] = 1
    image = mask.float() * 2 - 1
    for _ in range(10):
        out_image, out_boxes, out_masks = _augment(image, box, mask)
        assert out_image.shape == image.shape and out_masks.dtype == torch.uint8
        assert out_boxes.tolist()[0] == pytest.approx(_tight(out_masks[0] > 0), abs=2.0)
        bright = out_image[0] > out_image[0].mean()  # the image moved with its mask
        assert (bright == (out_masks[0] > 0)).float().mean() > 0.97
    _image, only_boxes, none = _augment(image, box, None)
    assert none is None and only_boxes.shape == (1, 4)


def _original_layout_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """EfficientNet-PyTorch naming (same order, `_fc` last), standing in for the package file."""
    renamed = {}
    for index, (key, value) in enumerate(model.state_dict().items()):
        prefix = "_fc." if key.startswith("classifier.") else f"_blocks_{index}."
        renamed[prefix + key.split(".")[-1]] = value.clone()
    return renamed


def test_imagenet_weights_load_into_the_detector_body_with_a_grey_stem(tmp_path):
    torch.manual_seed(0)
    rgb = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    path = tmp_path / "weights.pth"
    torch.save(_original_layout_state(rgb), path)
    detector = RegionDetector(DetectorConfig.from_dict(DetectorConfig.tiny().to_dict() | {"backbone": "tf_efficientnet_lite0"}))
    provenance = load_imagenet_body(detector, path)
    body = detector.rcnn.backbone.body.state_dict()
    expected = rgb.state_dict()
    assert torch.allclose(body["conv_stem.weight"], expected["conv_stem.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(body["blocks.6.0.conv_pwl.weight"], expected["blocks.6.0.conv_pwl.weight"])
    assert provenance["backbone"] == "tf_efficientnet_lite0" and len(provenance["sha256"]) == 64


def test_dice_of_masks():
    a = torch.zeros(10, 10, dtype=torch.bool)
    b = torch.zeros(10, 10, dtype=torch.bool)
    a[:, :5] = True
    b[:, :5] = True
    assert dice_score(a, b) == 1.0
    b[:] = False
    b[:, 4:6] = True  # 10 of a's 50 pixels, 20 in b
    assert dice_score(a, b) == pytest.approx(2 * 10 / 70)
    assert dice_score(torch.zeros_like(a), torch.zeros_like(a)) == 1.0


def test_region_boxes_of_a_cli_jsonl_are_scored_against_the_jsrt_masks(tmp_path):
    import json
    from pathlib import Path

    from train.config import load_config
    from train.data.jsrt import JsrtRegionDataset
    from train.tasks.common import spec_of
    from train.tasks.detector_task import score_regions_jsonl

    config = load_config(Path(__file__).resolve().parents[2] / "train" / "configs" / "tiny.yaml")
    root = Path(config["data"]["jsrt"])
    if not root.is_absolute():
        root = Path(__file__).resolve().parents[2] / root
    config["data"]["jsrt"] = str(root)
    dataset = JsrtRegionDataset(root, "test", spec_of(config))
    exact, shifted = dataset.ids[:2]
    lines = []
    for image_id, shift in ((exact, 0.0), (shifted, 1e9)):
        boxes = dataset.region_boxes(image_id)
        regions = [{"name": name, "box": [v + (shift if k == 0 else 0.0) for k, v in enumerate(box)], "image": 0}
                   for name, box in boxes.items()]
        lines.append({"images": [{"path": str(root / "images" / f"{image_id}.png")}], "regions": regions})
    lines.append({"path": "elsewhere.png", "error": "not a radiograph"})
    path = tmp_path / "drafts.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    result = score_regions_jsonl(config, path, "test")
    assert result["images"] == 2
    assert result["iou_per_region"]["heart"] == pytest.approx(0.5)  # one exact, one far off
    assert result["mean_iou_organs"] == pytest.approx(0.5)
    assert "whole_image" not in result["iou_per_region"]  # the frame is not a detection


def test_imagenet_weights_load_into_the_outline_refiners_encoder(tmp_path):
    from rrg_desk.models.outline_refiner import OutlineRefiner, OutlineRefinerConfig
    from train.pretrained import load_imagenet_features

    torch.manual_seed(0)
    rgb = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    path = tmp_path / "weights.pth"
    torch.save(_original_layout_state(rgb), path)
    refiner = OutlineRefiner(OutlineRefinerConfig(regions=["heart"]))
    provenance = load_imagenet_features(refiner.encoder, "tf_efficientnet_lite0", path)
    encoder, expected = refiner.encoder.state_dict(), rgb.state_dict()
    assert torch.allclose(encoder["conv_stem.weight"], expected["conv_stem.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(encoder["blocks.4.2.conv_pwl.weight"], expected["blocks.4.2.conv_pwl.weight"])
    assert "blocks.5.0.conv_pwl.weight" not in encoder and len(provenance["sha256"]) == 64


def test_refiner_crops_hold_each_organ_in_the_middle_with_its_context():
    from rrg_desk.models.outline_refiner import OutlineRefinerConfig
    from train.tasks.refiner_task import organ_crops

    masks = torch.zeros(5, 128, 128, dtype=torch.uint8)
    masks[2, 40:80, 30:90] = 1  # the heart (SCR_ORGANS order); the lungs and clavicles are absent
    item = {"image": masks[2:3].float(), "masks": masks, "region_names": ["heart"],
            "boxes": torch.tensor([[30.0, 40.0, 90.0, 80.0]])}
    config = OutlineRefinerConfig(regions=["right_lung", "heart"], crop_size=56, context=0.25)
    crops, channels, targets = organ_crops([item], config, jitter=0.0, augment=False)
    assert crops.shape == (1, 1, 56, 56) and channels.tolist() == [1] and targets.shape == (1, 28, 28)
    rows, cols = (targets[0] >= 0.5).any(dim=1).nonzero()[:, 0], (targets[0] >= 0.5).any(dim=0).nonzero()[:, 0]
    # grown by a quarter on each side, the organ spans the middle two thirds of its crop (28/6 = 4.7 to 23.3)
    assert [int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1] == pytest.approx([4.7, 23.3] * 2, abs=1)
    assert crops[0, 0, 11:45, 11:45].min() > 0.98 and crops[0, 0, :8].max() < 0.02  # the image is cut with its mask
    moved = organ_crops([item], config, jitter=0.1, augment=True)[2]
    assert moved.shape == (1, 28, 28) and not torch.equal(moved, targets)
