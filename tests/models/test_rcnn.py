"""The plain-torch Faster R-CNN (rrg_desk.models.rcnn, rcnn_ops) against torchvision's own: the
same weights give the same proposals, features, losses and gradients, and a draft's detector
never imports torchvision."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torchvision
from torchvision.models.detection import FasterRCNN as TorchvisionFasterRCNN
from torchvision.models.detection._utils import BoxCoder as TorchvisionBoxCoder
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.ops import boxes as tv_boxes

from rrg_desk.models import rcnn_ops
from rrg_desk.models.detector import DetectorConfig, RegionDetector

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _random_boxes(count: int, size: float = 64.0, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    corner = torch.rand(count, 2, generator=generator) * size * 0.7
    extent = torch.rand(count, 2, generator=generator) * size * 0.3 + 1.0
    return torch.cat([corner, corner + extent], dim=1)


def test_roi_align_matches_torchvision_forward_and_backward():
    features = torch.randn(2, 3, 16, 20, requires_grad=True)
    rois = torch.cat([torch.tensor([[0.0], [1.0], [1.0]]), _random_boxes(3, 16.0)], dim=1)
    ours = rcnn_ops.roi_align(features, rois, 5, 0.5, 2)
    ours.square().sum().backward()
    grad_ours, features.grad = features.grad.clone(), None
    theirs = torchvision.ops.roi_align(features, rois, (5, 5), 0.5, 2)
    theirs.square().sum().backward()
    assert torch.allclose(ours, theirs) and torch.allclose(grad_ours, features.grad)
    assert grad_ours.abs().sum() > 0


def test_nms_box_iou_and_box_coder_match_torchvision():
    boxes, scores = _random_boxes(60, seed=1), torch.rand(60, generator=torch.Generator().manual_seed(2))
    groups = torch.arange(60) % 3
    assert torch.equal(rcnn_ops.nms(boxes, scores, 0.3), torchvision.ops.nms(boxes, scores, 0.3))
    assert torch.equal(rcnn_ops.batched_nms(boxes, scores, groups, 0.3),
                       torchvision.ops.batched_nms(boxes, scores, groups, 0.3))
    assert torch.allclose(rcnn_ops.box_iou(boxes[:7], boxes), tv_boxes.box_iou(boxes[:7], boxes))
    assert torch.equal(rcnn_ops.clip_boxes_to_image(boxes * 2 - 20, (50, 40)),
                       tv_boxes.clip_boxes_to_image(boxes * 2 - 20, (50, 40)))
    ours, theirs = rcnn_ops.BoxCoder((10.0, 10.0, 5.0, 5.0)), TorchvisionBoxCoder((10.0, 10.0, 5.0, 5.0))
    targets, references = [boxes[:30], boxes[30:]], [boxes[30:] + 1.5, boxes[:30] * 0.9 + 2.0]
    for a, b in zip(ours.encode(targets, references), theirs.encode(targets, references)):
        assert torch.allclose(a, b)
    deltas = torch.randn(60, 12, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(ours.decode(deltas, references), theirs.decode(deltas, references))


def test_paste_masks_matches_mask_rcnn_paste():
    masks = torch.rand(4, 14, 14, generator=torch.Generator().manual_seed(4))
    boxes = torch.tensor([[3.2, 5.0, 40.7, 30.1], [-4.0, -2.0, 20.0, 70.0], [10.0, 10.0, 11.0, 11.0],
                          [50.0, 40.0, 80.0, 90.0]])
    theirs = paste_masks_in_image(masks[:, None], boxes, (64, 72), padding=1)[:, 0]
    assert torch.allclose(rcnn_ops.paste_masks(masks, boxes, 64, 72), theirs)


def _twin_torchvision(detector: RegionDetector) -> TorchvisionFasterRCNN:
    """torchvision's Faster R-CNN with the detector's settings and weights."""
    config, ours = detector.config, detector.rcnn
    twin = TorchvisionFasterRCNN(
        ours.backbone, num_classes=None, min_size=config.image_size, max_size=config.image_size,
        image_mean=[0.0], image_std=[1.0], rpn_anchor_generator=torchvision.models.detection.anchor_utils.AnchorGenerator(
            sizes=tuple((s,) for s in config.anchor_sizes),
            aspect_ratios=(tuple(config.aspect_ratios),) * len(config.anchor_sizes)),
        rpn_pre_nms_top_n_train=config.rpn_pre_nms_top_n_train, rpn_post_nms_top_n_train=config.rpn_post_nms_top_n_train,
        rpn_pre_nms_top_n_test=config.rpn_pre_nms_top_n_test, rpn_post_nms_top_n_test=config.rpn_post_nms_top_n_test,
        box_roi_pool=torchvision.ops.MultiScaleRoIAlign(["0", "1", "2"], config.roi_output_size, 2),
        box_head=torchvision.models.detection.faster_rcnn.TwoMLPHead(
            config.fpn_channels * config.roi_output_size ** 2, config.representation_size),
        box_predictor=torchvision.models.detection.faster_rcnn.FastRCNNPredictor(
            config.representation_size, config.num_classes),
        box_batch_size_per_image=config.box_batch_size_per_image)
    twin.load_state_dict(ours.state_dict())  # same names: strict load
    return twin


def _batch():
    torch.manual_seed(5)
    images = torch.randn(2, 1, 64, 56)
    boxes = torch.tensor([[4.0, 6.0, 30.0, 50.0], [28.0, 8.0, 52.0, 40.0], [18.0, 20.0, 36.0, 44.0]])
    targets = [{"boxes": boxes[:2], "labels": torch.tensor([1, 2])},
               {"boxes": boxes, "labels": torch.tensor([1, 2, 3])}]
    return images, targets


def test_proposals_and_box_features_match_torchvision():
    torch.manual_seed(0)
    detector = RegionDetector(DetectorConfig.tiny()).eval()
    twin = _twin_torchvision(detector).eval()
    images, _ = _batch()
    with torch.no_grad():
        ours_list, _ = detector.rcnn.transform(list(images))
        theirs_list, _ = twin.transform(list(images))
        assert torch.equal(ours_list.tensors, theirs_list.tensors)
        assert ours_list.image_sizes == theirs_list.image_sizes
        features = detector.rcnn.backbone(ours_list.tensors)
        ours, _ = detector.rcnn.rpn(ours_list, features)
        theirs, _ = twin.rpn(theirs_list, features)
        assert len(ours[0]) > 10
        for a, b in zip(ours, theirs):
            assert torch.allclose(a, b)
        pooled = detector.rcnn.roi_heads.box_roi_pool(features, ours, ours_list.image_sizes)
        assert torch.allclose(pooled, twin.roi_heads.box_roi_pool(features, theirs, theirs_list.image_sizes))


def test_training_losses_and_gradients_match_torchvision():
    torch.manual_seed(0)
    detector = RegionDetector(DetectorConfig.tiny()).train()
    twin = _twin_torchvision(detector).train()
    images, targets = _batch()
    torch.manual_seed(7)  # the anchor and proposal samplers draw from it in the same order
    ours = detector.rcnn
    image_list, box_targets = ours.transform(list(images), targets)
    features = ours.backbone(image_list.tensors)
    proposals, losses = ours.rpn(image_list, features, box_targets)
    losses = {**losses, **ours.roi_heads(features, proposals, image_list.image_sizes, box_targets)}
    sum(losses.values()).backward()
    grads = {n: p.grad.clone() for n, p in ours.named_parameters() if p.grad is not None}
    ours.zero_grad()
    torch.manual_seed(7)
    theirs = twin(list(images), targets)
    assert set(losses) == set(theirs)
    for name in losses:
        assert torch.allclose(losses[name], theirs[name], atol=1e-6), name
    sum(theirs.values()).backward()
    for name, param in twin.named_parameters():
        if name in grads:
            assert torch.allclose(grads[name], param.grad, atol=1e-6), name
    assert grads


def test_a_draft_detector_never_imports_torchvision():
    code = ("import sys, torch\n"
            "from rrg_desk.models.detector import DetectorConfig, RegionDetector\n"
            "config = DetectorConfig.from_dict(DetectorConfig.tiny().to_dict() | {'backbone': 'tf_efficientnet_lite0'})\n"
            "detections = RegionDetector(config).eval().detect(torch.randn(1, 1, 64, 64))\n"
            "assert detections.boxes.shape[-1] == 4\n"
            "print(sorted(m for m in sys.modules if m.startswith(('torchvision', 'torch._dynamo'))))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
