"""RegionDetector: training losses, RGRG-style detect(), priors, determinism, size budget."""
from __future__ import annotations

import json
import logging

import pytest
import torch
from torchvision.ops import box_iou

from rrg_desk.models.detector import (
    DetectorConfig, RegionDetector, count_parameters, describe_size, mean_relative_boxes,
)
from rrg_desk.models.region_heads import RegionHeads, RegionHeadsConfig
from rrg_desk.models.regions import REGION_NAMES, TYPICAL_RELATIVE_BOXES

R = len(REGION_NAMES)
BOXES = {"right_lung": (8.0, 8.0, 28.0, 56.0), "left_lung": (36.0, 8.0, 56.0, 56.0), "heart": (24.0, 30.0, 44.0, 50.0)}


def _tiny(**overrides) -> RegionDetector:
    torch.manual_seed(0)
    config = DetectorConfig.tiny()
    for key, value in overrides.items():
        setattr(config, key, value)
    return RegionDetector(config)


def _phantom(batch: int = 1, height: int = 64, width: int = 64) -> torch.Tensor:
    """Normalised images with a bright rectangle per target box."""
    images = torch.full((batch, 1, height, width), -1.0)
    for x0, y0, x1, y1 in BOXES.values():
        images[:, 0, int(y0):int(y1), int(x0):int(x1)] += 1.0
    return images


def test_training_forward_returns_finite_losses_and_backpropagates():
    detector = _tiny().train()
    target = detector.region_targets(BOXES)
    assert target["labels"].tolist() == [REGION_NAMES.index(n) + 1 for n in BOXES]
    losses = detector(_phantom(2), [target, target])
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    stem = detector.rcnn.backbone.body["0"][0]
    assert stem.in_channels == 1 and stem.weight.grad is not None and stem.weight.grad.abs().sum() > 0


def test_training_without_targets_or_detecting_in_train_mode_is_refused():
    detector = _tiny().train()
    with pytest.raises(ValueError, match="targets"):
        detector(_phantom())
    with pytest.raises(RuntimeError, match="eval"):
        detector.detect(_phantom())


def test_detect_returns_one_box_score_and_feature_per_region():
    detector = _tiny().eval()
    config = detector.config
    with torch.inference_mode():
        out = detector(_phantom(2))
    assert out.boxes.shape == (2, R, 4) and out.scores.shape == (2, R) and out.detected.shape == (2, R)
    assert out.features.shape == (2, R, config.feature_dim)
    assert out.image_tokens.shape == (2, config.num_image_tokens, config.image_token_dim)
    assert out.selector_logits.shape == (2, R) and out.abnormal_logits.shape == (2, R)
    assert torch.all(out.boxes[..., 0] < out.boxes[..., 2]) and torch.all(out.boxes[..., 1] < out.boxes[..., 3])
    assert out.boxes.min() >= 0 and out.boxes.max() <= 64
    assert out.boxes[:, -1].tolist() == [[0.0, 0.0, 64.0, 64.0]] * 2  # whole_image = the frame
    assert out.scores[:, -1].tolist() == [1.0, 1.0] and out.detected[:, -1].all()
    # not detected <=> score 0 (the box is then the prior)
    assert torch.equal(out.scores[:, :-1] == 0, ~out.detected[:, :-1])


def test_undetected_regions_fall_back_to_the_prior_boxes_in_input_pixels():
    detector = _tiny(min_detection_score=1.01).eval()  # nothing can reach the threshold
    images = _phantom(1, height=48, width=64)  # not square: priors scale per axis
    with torch.inference_mode():
        out = detector.detect(images)
    assert not out.detected[0, :-1].any() and (out.scores[0, :-1] == 0).all()
    expected = detector.prior_boxes * torch.tensor([64.0, 48.0, 64.0, 48.0])
    assert torch.allclose(out.boxes[0], expected, atol=1e-4)
    assert torch.allclose(detector.prior_boxes[0], torch.tensor(TYPICAL_RELATIVE_BOXES["right_lung"]))

    custom = torch.rand(R, 2) * 0.4
    custom = torch.cat([custom, custom + 0.5], dim=1)
    detector.set_prior_boxes(custom)
    with torch.inference_mode():
        out = detector.detect(images)
    assert torch.allclose(out.boxes[0, :-1], (custom * torch.tensor([64.0, 48.0, 64.0, 48.0]))[:-1], atol=1e-4)
    with pytest.raises(ValueError):
        detector.set_prior_boxes(torch.zeros(3, 4))


def test_mean_relative_boxes_averages_per_region_and_defaults_to_the_frame():
    samples = [({"heart": (10.0, 20.0, 30.0, 40.0)}, (100, 50)), ({"heart": (30.0, 0.0, 50.0, 20.0)}, (100, 50))]
    priors = mean_relative_boxes(samples)
    heart = REGION_NAMES.index("heart")
    assert priors.shape == (R, 4)
    assert torch.allclose(priors[heart], torch.tensor([0.2, 0.2, 0.4, 0.6]))
    assert priors[0].tolist() == [0.0, 0.0, 1.0, 1.0]  # right_lung never seen


def test_priors_travel_in_the_state_dict():
    detector = _tiny()
    detector.set_prior_boxes(torch.full((R, 4), 0.25))
    restored = _tiny()
    restored.load_state_dict(detector.state_dict())
    assert torch.equal(restored.prior_boxes, detector.prior_boxes)


def test_region_features_for_given_boxes_match_detect():
    detector = _tiny().eval()
    images = _phantom(2)
    with torch.inference_mode():
        out = detector.detect(images)
        pooled = detector.region_features(images, out.boxes)
    assert torch.allclose(pooled, out.features, atol=1e-5)


def test_same_seed_same_model_and_outputs():
    first, second = _tiny().eval(), _tiny().eval()
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    images = _phantom(1)
    with torch.inference_mode():
        out_a, out_b = first.detect(images), second.detect(images)
    assert torch.equal(out_a.boxes, out_b.boxes) and torch.equal(out_a.features, out_b.features)
    torch.manual_seed(1)
    different = RegionDetector(DetectorConfig.tiny())
    assert not torch.equal(different.heads.region_embedding.weight, first.heads.region_embedding.weight)


def test_config_round_trips_through_json_and_rejects_nonsense():
    config = DetectorConfig.tiny()
    assert DetectorConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown"):
        DetectorConfig.from_dict(config.to_dict() | {"colour": "red"})
    with pytest.raises(ValueError, match="whole_image"):
        DetectorConfig(region_names=["heart"])
    assert config.num_classes == R  # background + every region but whole_image


def test_heads_train_with_masked_bce():
    heads = RegionHeads(RegionHeadsConfig(feature_dim=8, num_regions=R, hidden_dim=8, dropout=0.0))
    features = torch.randn(3, R, 8)
    selected = torch.randint(0, 2, (3, R))
    abnormal = torch.randint(0, 2, (3, R))
    valid = torch.ones(3, R, dtype=torch.bool)
    valid[2] = False  # an unlabelled study does not count
    losses = heads.loss(features, selected, abnormal, valid)
    assert set(losses) == {"loss_selector", "loss_abnormal"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert heads.selector[0].weight.grad is not None
    # masking: the labels of the invalid study do not change the loss
    flipped = selected.clone()
    flipped[2] = 1 - flipped[2]
    assert torch.allclose(heads.loss(features, flipped, abnormal, valid)["loss_selector"], losses["loss_selector"])


def test_tiny_detector_overfits_one_image():
    detector = _tiny().train()
    images, target = _phantom(1), detector.region_targets(BOXES)
    optimizer = torch.optim.AdamW(detector.parameters(), lr=3e-3)
    history = []
    for _ in range(40):
        loss = sum(detector(images, [target]).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert history[-1] < 0.25 * history[0]
    detector.eval()
    with torch.inference_mode():
        out = detector.detect(images)
    iou = box_iou(out.boxes[0, :3], target["boxes"]).diag()
    assert iou.max() > 0.5


def test_default_config_fits_the_budget_and_keeps_512_px():
    torch.manual_seed(0)
    detector = RegionDetector(DetectorConfig()).eval()
    params = count_parameters(detector)
    logging.getLogger(__name__).info("default detector: %s", describe_size(detector))
    assert params < 3_000_000  # ~2.0M: 7.6 MB fp32 of the ~30 MB bundle budget
    with torch.inference_mode():
        out = detector.detect(torch.zeros(1, 1, 512, 400))
    assert out.boxes[0, -1].tolist() == [0.0, 0.0, 400.0, 512.0]
    assert out.image_tokens.shape == (1, 64, 64) and out.features.shape == (1, R, 256)
    image_list, _ = detector.rcnn.transform([torch.zeros(1, 512, 400)])
    assert image_list.image_sizes == [(512, 400)]  # not rescaled
