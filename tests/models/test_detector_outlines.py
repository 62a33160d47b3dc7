"""The detector's outline (mask) head and its ImageNet-ready EfficientNet-Lite backbone."""
from __future__ import annotations

import pytest
import torch

from rrg_desk.models.detector import DetectorConfig, RegionDetector, TimmBackboneWithFPN, paste_masks
from rrg_desk.models.regions import REGION_NAMES

ORGANS = ["right_lung", "left_lung", "heart"]
BOXES = {"right_lung": (8.0, 8.0, 28.0, 56.0), "left_lung": (36.0, 8.0, 56.0, 56.0), "heart": (24.0, 30.0, 44.0, 50.0)}


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _detector(**overrides) -> RegionDetector:
    torch.manual_seed(0)
    config = DetectorConfig.from_dict(DetectorConfig.tiny().to_dict() | {
        "mask_regions": ORGANS, "mask_size": 8, "mask_channels": 8, "mask_layers": 1} | overrides)
    return RegionDetector(config)


def _masks() -> dict[str, torch.Tensor]:
    out = {}
    for name, (x0, y0, x1, y1) in BOXES.items():
        mask = torch.zeros(64, 64)
        mask[int(y0):int(y1), int(x0):int(x1)] = 1
        out[name] = mask
    return out


def _images(batch: int = 2) -> torch.Tensor:
    images = torch.full((batch, 1, 64, 64), -1.0)
    for x0, y0, x1, y1 in BOXES.values():
        images[:, 0, int(y0):int(y1), int(x0):int(x1)] += 1.0
    return images


def test_mask_head_trains_with_the_box_losses_and_detect_returns_one_map_per_organ():
    detector = _detector().train()
    target = detector.region_targets(BOXES, masks_by_name=_masks())
    assert target["masks"].shape == (3, 64, 64) and target["masks"].dtype == torch.uint8
    losses = detector(_images(), [target, target])
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg", "loss_mask"}
    assert all(torch.isfinite(v) for v in losses.values())
    losses["loss_mask"].backward()
    assert detector.mask_head.logits.weight.grad.abs().sum() > 0
    detector.eval()
    with torch.inference_mode():
        out = detector.detect(_images())
    assert out.masks.shape == (2, 3, 8, 8)
    assert 0.0 <= float(out.masks.min()) and float(out.masks.max()) <= 1.0


def test_mask_loss_falls_as_the_head_learns_the_organ_shapes():
    detector = _detector(mask_box_jitter=0.0).train()
    target = detector.region_targets(BOXES, masks_by_name=_masks())
    optimiser = torch.optim.Adam(detector.mask_head.parameters(), lr=0.01)
    first = None
    for _ in range(30):
        loss = detector(_images(1), [target])["loss_mask"]
        first = float(loss.detach()) if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert float(loss.detach()) < 0.5 * first  # the boxes are the organs: the masks are all ones


def test_an_image_without_an_organ_adds_no_mask_loss_for_it():
    detector = _detector().train()
    only_heart = {"heart": BOXES["heart"]}
    target = detector.region_targets(only_heart, masks_by_name={"heart": _masks()["heart"]})
    assert target["masks"][:2].sum() == 0 and target["masks"][2].sum() > 0
    empty = detector.region_targets(only_heart, masks_by_name={})
    losses = detector(_images(1), [empty])
    assert float(losses["loss_mask"].detach()) == 0.0  # nothing to learn from, still differentiable
    with pytest.raises(ValueError, match="masks"):
        detector(_images(1), [{"boxes": target["boxes"], "labels": target["labels"]}])


def test_paste_masks_fills_the_box_and_nothing_outside():
    masks = torch.ones(2, 8, 8)
    boxes = torch.tensor([[8.0, 8.0, 24.0, 40.0], [30.0, 30.0, 60.0, 50.0]])
    pasted = paste_masks(masks, boxes, 64, 64)
    assert pasted.shape == (2, 64, 64)
    assert pasted[0, 10:38, 10:22].min() > 0.5 and pasted[0, 44:, :].max() == 0 and pasted[0, :, 30:].max() == 0
    assert paste_masks(torch.zeros(0, 8, 8), torch.zeros(0, 4), 64, 64).shape == (0, 64, 64)


def _quarter_painting(detector: RegionDetector) -> RegionDetector:
    """The mask head paints only the top-left quarter of every box."""
    with torch.no_grad():
        detector.mask_head.logits.weight.zero_()
        detector.mask_head.logits.bias.fill_(-20.0)
    base = detector.mask_head.logits

    class QuarterHead(torch.nn.Module):
        def forward(self, x):
            out = base(x)
            out[..., :4, :4] = 20.0
            return out

    detector.mask_head.logits = QuarterHead()
    return detector


@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_outline_box_weight_moves_a_detected_organ_box_towards_its_outline_tight_box(weight):
    detector = _quarter_painting(_detector(outline_box_weight=weight, min_detection_score=0.0).eval())
    with torch.inference_mode():
        refined = detector.detect(_images(1))
        detector.config.outline_box_weight = 0.0
        plain = detector.detect(_images(1))
    for region in ORGANS:
        r = REGION_NAMES.index(region)
        x0, y0, x1, y1 = plain.boxes[0, r].tolist()
        rx0, ry0, rx1, ry1 = refined.boxes[0, r].tolist()
        assert abs(rx0 - x0) <= 1.5 and abs(ry0 - y0) <= 1.5  # same corner
        # the outline's box is half as wide and high; the refined box lies `weight` of the way there
        shrink = 1.0 - weight / 2
        assert rx1 - rx0 == pytest.approx((x1 - x0) * shrink, abs=2.5)
        assert ry1 - ry0 == pytest.approx((y1 - y0) * shrink, abs=2.5)
    untouched = REGION_NAMES.index("mediastinum")
    assert torch.equal(refined.boxes[0, untouched], plain.boxes[0, untouched])


def test_cards_with_boxes_from_masks_still_load_as_an_outline_weight():
    base = DetectorConfig.tiny().to_dict()
    del base["outline_box_weight"]
    assert DetectorConfig.from_dict(base | {"boxes_from_masks": True}).outline_box_weight == 1.0
    assert DetectorConfig.from_dict(base | {"boxes_from_masks": False}).outline_box_weight == 0.0
    with pytest.raises(ValueError, match="outline_box_weight"):
        DetectorConfig.from_dict(DetectorConfig.tiny().to_dict() | {"outline_box_weight": 1.5})


def test_box_fusion_is_the_score_weighted_mean_of_the_best_proposals():
    detector = _detector(box_fusion_top_k=3, box_fusion_min_share=0.5)
    boxes = torch.tensor([[[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 4.0, 4.0]],
                          [[2.0, 2.0, 12.0, 12.0], [10.0, 10.0, 20.0, 20.0]],
                          [[9.0, 9.0, 9.0, 9.0], [50.0, 50.0, 60.0, 60.0]]])  # [N=3, C=2, 4]
    probs = torch.tensor([[0.6, 0.8], [0.3, 0.1], [0.1, 0.05]])
    fused = detector._fused_boxes(boxes, probs)
    # class 0: the first two proposals (0.1 < 0.5 x 0.6 drops the third), weights 0.6 and 0.3
    assert fused[0].tolist() == pytest.approx([(0.6 * 0 + 0.3 * 2) / 0.9, (0.6 * 0 + 0.3 * 2) / 0.9,
                                               (0.6 * 10 + 0.3 * 12) / 0.9, (0.6 * 10 + 0.3 * 12) / 0.9])
    assert fused[1].tolist() == pytest.approx([0.0, 0.0, 4.0, 4.0])  # only the best is near its score


def test_box_fusion_of_one_is_the_single_best_box():
    detector = _detector(min_detection_score=0.0).eval()
    with torch.inference_mode():
        single = detector.detect(_images(1))
        detector.config.box_fusion_top_k = 10
        fused = detector.detect(_images(1))
        detector.config.box_fusion_top_k = 1
        again = detector.detect(_images(1))
    assert torch.equal(single.boxes, again.boxes)
    assert torch.equal(single.scores, fused.scores)  # fusion moves boxes, never the score
    assert not torch.equal(single.boxes, fused.boxes)


def test_mask_regions_must_be_detector_regions():
    with pytest.raises(ValueError, match="mask_regions"):
        DetectorConfig.from_dict(DetectorConfig.tiny().to_dict() | {"mask_regions": ["spleen"]})
    with pytest.raises(ValueError, match="mask_regions"):
        DetectorConfig.from_dict(DetectorConfig.tiny().to_dict() | {"mask_regions": ["whole_image"]})


def test_efficientnet_backbone_takes_one_channel_and_keeps_its_batch_norm_frozen():
    detector = _detector(backbone="tf_efficientnet_lite0")
    backbone = detector.rcnn.backbone
    assert isinstance(backbone, TimmBackboneWithFPN) and backbone.body.conv_stem.in_channels == 1
    detector.train()
    norms = [m for m in backbone.body.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(not m.training for m in norms) and all(not p.requires_grad for m in norms for p in m.parameters())
    before = norms[0].running_mean.clone()
    target = detector.region_targets(BOXES, masks_by_name=_masks())
    losses = detector(_images(), [target, target])
    sum(losses.values()).backward()
    assert torch.equal(norms[0].running_mean, before)  # batches of four do not move ImageNet's statistics
    assert backbone.body.conv_stem.weight.grad.abs().sum() > 0
    detector.eval()
    with torch.inference_mode():
        out = detector.detect(_images(1))
    assert out.features.shape == (1, len(REGION_NAMES), detector.config.feature_dim)


def test_each_mask_target_is_cut_from_its_own_organ_mask():
    from rrg_desk.models.detector import mask_targets

    masks = torch.stack([_masks()[name] for name in ORGANS]).to(torch.uint8)
    boxes = torch.tensor([BOXES[name] for name in ORGANS])
    targets = mask_targets(masks, boxes, 8)
    assert targets.shape == (3, 8, 8)
    assert targets[:, 1:-1, 1:-1].min() > 0.99  # every organ fills its own box (not the first organ's mask)
    swapped = mask_targets(masks, boxes[[1, 0, 2]], 8)
    assert swapped[0].max() < 0.01 and swapped[1].max() < 0.01  # a lung cut at the other lung's box is empty
