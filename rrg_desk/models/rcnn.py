"""Faster R-CNN in plain torch: the parts the region detector uses, with torchvision's module and
parameter names (bundles trained on torchvision's classes load unchanged) and its algorithms
(BSD-3-Clause), so a draft never imports torchvision; see ``rcnn_ops`` for why.

Only what ``RegionDetector`` needs: an FPN, anchors, the region proposal network (proposals and
its training loss), the box head's RoI pooling, head and predictor with their training loss, and
the input transform (normalise, resize so the image fits min/max size, pad to a multiple of 32).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rrg_desk.models.rcnn_ops import (BoxCoder, MultiScaleRoIAlign, batched_nms, box_iou, clip_boxes_to_image,
                                     remove_small_boxes, resize_boxes)


@dataclass
class ImageList:
    tensors: torch.Tensor  # [B, C, H, W], padded to a multiple of 32
    image_sizes: list[tuple[int, int]]  # each image's own (height, width) inside the padding


class RCNNTransform(nn.Module):
    """Normalise, resize so the short side reaches min_size without the long side passing
    max_size (boxes follow), and batch with zero padding to a multiple of 32."""

    def __init__(self, min_size: int, max_size: int, image_mean: list[float], image_std: list[float]):
        super().__init__()
        self.min_size, self.max_size, self.image_mean, self.image_std = min_size, max_size, image_mean, image_std

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None):
        targets = [dict(t) for t in targets] if targets is not None else None
        resized = []
        for i, image in enumerate(images):
            mean = torch.as_tensor(self.image_mean, dtype=image.dtype, device=image.device)
            std = torch.as_tensor(self.image_std, dtype=image.dtype, device=image.device)
            image = (image - mean[:, None, None]) / std[:, None, None]
            original = image.shape[-2:]
            scale = min(self.min_size / min(original), self.max_size / max(original))
            image = F.interpolate(image[None], size=None, scale_factor=scale, mode="bilinear",
                                  recompute_scale_factor=True, align_corners=False)[0]
            if targets is not None and "boxes" in targets[i]:
                targets[i]["boxes"] = resize_boxes(targets[i]["boxes"], original, image.shape[-2:])
            resized.append(image)
        sizes = [tuple(img.shape[-2:]) for img in resized]
        height = int(-(-max(s[0] for s in sizes) // 32) * 32)
        width = int(-(-max(s[1] for s in sizes) // 32) * 32)
        batch = resized[0].new_full((len(resized), resized[0].shape[0], height, width), 0)
        for image, padded in zip(resized, batch):
            padded[:, :image.shape[1], :image.shape[2]].copy_(image)
        return ImageList(batch, [(int(h), int(w)) for h, w in sizes]), targets


class FeaturePyramidNetwork(nn.Module):
    """Top-down FPN over the named feature maps (highest resolution first), plus a "pool" level
    (stride-2 max pool of the last output), as torchvision's with LastLevelMaxPool."""

    def __init__(self, in_channels_list: list[int], out_channels: int):
        super().__init__()
        self.inner_blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(c, out_channels, 1)) for c in in_channels_list)
        self.layer_blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(out_channels, out_channels, 3, padding=1))
                                          for _ in in_channels_list)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, a=1)
                nn.init.constant_(module.bias, 0)

    def forward(self, x: "OrderedDict[str, torch.Tensor]") -> "OrderedDict[str, torch.Tensor]":
        names, features = list(x.keys()), list(x.values())
        last_inner = self.inner_blocks[-1](features[-1])
        results = [self.layer_blocks[-1](last_inner)]
        for idx in range(len(features) - 2, -1, -1):
            lateral = self.inner_blocks[idx](features[idx])
            last_inner = lateral + F.interpolate(last_inner, size=lateral.shape[-2:], mode="nearest")
            results.insert(0, self.layer_blocks[idx](last_inner))
        names.append("pool")
        results.append(F.max_pool2d(results[-1], 1, 2, 0))
        return OrderedDict(zip(names, results))


class AnchorGenerator(nn.Module):
    """One set of anchors (sizes x aspect ratios h/w, rounded) per feature level, at every cell."""

    def __init__(self, sizes: tuple[tuple[int, ...], ...], aspect_ratios: tuple[tuple[float, ...], ...]):
        super().__init__()
        self.cell_anchors = [self._cell(s, a) for s, a in zip(sizes, aspect_ratios)]

    @staticmethod
    def _cell(scales, aspect_ratios) -> torch.Tensor:
        scales, aspect_ratios = torch.as_tensor(scales, dtype=torch.float32), torch.as_tensor(aspect_ratios)
        h_ratios = torch.sqrt(aspect_ratios.float())
        w_ratios = 1 / h_ratios
        ws, hs = (w_ratios[:, None] * scales[None, :]).view(-1), (h_ratios[:, None] * scales[None, :]).view(-1)
        return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()

    def num_anchors_per_location(self) -> list[int]:
        return [len(c) for c in self.cell_anchors]

    def forward(self, image_list: ImageList, feature_maps: list[torch.Tensor]) -> list[torch.Tensor]:
        height, width = image_list.tensors.shape[-2:]
        dtype, device = feature_maps[0].dtype, feature_maps[0].device
        per_level = []
        for feature, base in zip(feature_maps, self.cell_anchors):
            grid_h, grid_w = feature.shape[-2:]
            stride_h = torch.empty((), dtype=torch.int64, device=device).fill_(height // grid_h)
            stride_w = torch.empty((), dtype=torch.int64, device=device).fill_(width // grid_w)
            shifts_x = torch.arange(0, grid_w, dtype=torch.int32, device=device) * stride_w
            shifts_y = torch.arange(0, grid_h, dtype=torch.int32, device=device) * stride_h
            shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
            shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
            shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
            base = base.to(dtype=dtype, device=device)
            per_level.append((shifts.view(-1, 1, 4) + base.view(1, -1, 4)).reshape(-1, 4))
        anchors = torch.cat(per_level)
        return [anchors for _ in image_list.image_sizes]


class RPNHead(nn.Module):
    """A shared 3x3 conv, then per anchor an objectness logit and four box deltas."""

    def __init__(self, in_channels: int, num_anchors: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Sequential(nn.Conv2d(in_channels, in_channels, 3, padding=1),
                                                nn.ReLU(inplace=True)))
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, 1)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.normal_(layer.weight, std=0.01)
                nn.init.constant_(layer.bias, 0)

    def forward(self, features: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        hidden = [self.conv(f) for f in features]
        return [self.cls_logits(t) for t in hidden], [self.bbox_pred(t) for t in hidden]


BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS = -1, -2


def match(quality: torch.Tensor, high: float, low: float, allow_low_quality: bool) -> torch.Tensor:
    """quality [G, N] (IoU of each ground-truth box with each candidate) -> [N]: the matched
    ground-truth index, or -1 (below `low`) / -2 (between); with allow_low_quality each ground
    truth also keeps its best candidates however low their IoU."""
    if quality.numel() == 0:
        raise ValueError("no ground-truth boxes or no candidates for one of the images during training")
    matched_vals, matches = quality.max(dim=0)
    all_matches = matches.clone()
    matches[matched_vals < low] = BELOW_LOW_THRESHOLD
    matches[(matched_vals >= low) & (matched_vals < high)] = BETWEEN_THRESHOLDS
    if allow_low_quality:
        best_per_gt, _ = quality.max(dim=1)
        candidates = torch.where(quality == best_per_gt[:, None])[1]
        matches[candidates] = all_matches[candidates]
    return matches


def sample_balanced(labels: list[torch.Tensor], batch_size: int, positive_fraction: float
                    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per image, masks of up to batch_size x positive_fraction random positives (label >= 1) and
    random negatives (label 0) filling the rest of batch_size."""
    positives, negatives = [], []
    for image_labels in labels:
        positive = torch.where(image_labels >= 1)[0]
        negative = torch.where(image_labels == 0)[0]
        num_pos = min(positive.numel(), int(batch_size * positive_fraction))
        num_neg = min(negative.numel(), batch_size - num_pos)
        chosen_pos = positive[torch.randperm(positive.numel(), device=positive.device)[:num_pos]]
        chosen_neg = negative[torch.randperm(negative.numel(), device=negative.device)[:num_neg]]
        pos_mask = torch.zeros_like(image_labels, dtype=torch.uint8)
        neg_mask = torch.zeros_like(image_labels, dtype=torch.uint8)
        pos_mask[chosen_pos] = 1
        neg_mask[chosen_neg] = 1
        positives.append(pos_mask)
        negatives.append(neg_mask)
    return positives, negatives


def _flatten_levels(logits: list[torch.Tensor], deltas: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per level [B, A*C, H, W] -> all levels' anchors in one row per image, as the anchors are laid out."""
    flat_logits, flat_deltas = [], []
    for level_logits, level_deltas in zip(logits, deltas):
        n, a_c, h, w = level_logits.shape
        a = level_deltas.shape[1] // 4
        flat_logits.append(level_logits.view(n, -1, a_c // a, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, a_c // a))
        flat_deltas.append(level_deltas.view(n, -1, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4))
    return torch.cat(flat_logits, dim=1).flatten(0, -2), torch.cat(flat_deltas, dim=1).reshape(-1, 4)


class RegionProposalNetwork(nn.Module):
    """Proposals: each level's best anchors by objectness, decoded, clipped, small boxes dropped,
    NMS within the level, the best post_nms_top_n kept. Training adds the objectness and box losses
    on a balanced sample of anchors matched to the ground truth."""

    def __init__(self, anchor_generator: AnchorGenerator, head: RPNHead, pre_nms_top_n: dict[str, int],
                 post_nms_top_n: dict[str, int], fg_iou_thresh: float = 0.7, bg_iou_thresh: float = 0.3,
                 batch_size_per_image: int = 256, positive_fraction: float = 0.5, nms_thresh: float = 0.7):
        super().__init__()
        self.anchor_generator, self.head = anchor_generator, head
        self.box_coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self.fg_iou_thresh, self.bg_iou_thresh = fg_iou_thresh, bg_iou_thresh
        self.batch_size_per_image, self.positive_fraction = batch_size_per_image, positive_fraction
        self._pre_nms_top_n, self._post_nms_top_n = pre_nms_top_n, post_nms_top_n
        self.nms_thresh, self.min_size = nms_thresh, 1e-3

    def _mode(self) -> str:
        return "training" if self.training else "testing"

    def forward(self, images: ImageList, features: dict[str, torch.Tensor], targets: list[dict] | None = None):
        maps = list(features.values())
        logits, deltas = self.head(maps)
        anchors = self.anchor_generator(images, maps)
        per_level = [o[0].shape[0] * o[0].shape[1] * o[0].shape[2] for o in logits]
        objectness, deltas = _flatten_levels(logits, deltas)
        proposals = self.box_coder.decode(deltas.detach(), anchors).view(len(anchors), -1, 4)
        boxes, scores = self._filter(proposals, objectness, images.image_sizes, per_level)
        if not self.training:
            return boxes, {}
        if targets is None:
            raise ValueError("training needs targets")
        labels, matched = self._assign(anchors, targets)
        regression_targets = self.box_coder.encode(matched, anchors)
        loss_objectness, loss_box = self._loss(objectness, deltas, labels, list(regression_targets))
        return boxes, {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_box}

    def _filter(self, proposals, objectness, image_sizes, per_level):
        count = proposals.shape[0]
        objectness = objectness.detach().reshape(count, -1)
        levels = torch.cat([torch.full((n,), i, dtype=torch.int64, device=proposals.device)
                            for i, n in enumerate(per_level)]).reshape(1, -1).expand_as(objectness)
        top, offset = [], 0
        for level_scores in objectness.split(per_level, 1):
            k = min(self._pre_nms_top_n[self._mode()], level_scores.size(1))
            top.append(level_scores.topk(k, dim=1)[1] + offset)
            offset += level_scores.shape[1]
        top = torch.cat(top, dim=1)
        rows = torch.arange(count, device=proposals.device)[:, None]
        scores, levels, proposals = objectness[rows, top].sigmoid(), levels[rows, top], proposals[rows, top]
        final_boxes, final_scores = [], []
        for boxes, image_scores, lvl, size in zip(proposals, scores, levels, image_sizes):
            boxes = clip_boxes_to_image(boxes, size)
            keep = remove_small_boxes(boxes, self.min_size)
            boxes, image_scores, lvl = boxes[keep], image_scores[keep], lvl[keep]
            keep = torch.where(image_scores >= 0.0)[0]
            boxes, image_scores, lvl = boxes[keep], image_scores[keep], lvl[keep]
            keep = batched_nms(boxes, image_scores, lvl, self.nms_thresh)[:self._post_nms_top_n[self._mode()]]
            final_boxes.append(boxes[keep])
            final_scores.append(image_scores[keep])
        return final_boxes, final_scores

    def _assign(self, anchors, targets):
        labels, matched_boxes = [], []
        for image_anchors, target in zip(anchors, targets):
            gt = target["boxes"]
            if gt.numel() == 0:  # an image without regions: every anchor is background
                matched_boxes.append(torch.zeros(image_anchors.shape, dtype=torch.float32, device=gt.device))
                labels.append(torch.zeros((image_anchors.shape[0],), dtype=torch.float32, device=gt.device))
                continue
            matches = match(box_iou(gt, image_anchors), self.fg_iou_thresh, self.bg_iou_thresh, True)
            matched_boxes.append(gt[matches.clamp(min=0)])
            image_labels = (matches >= 0).to(torch.float32)
            image_labels[matches == BELOW_LOW_THRESHOLD] = 0.0
            image_labels[matches == BETWEEN_THRESHOLDS] = -1.0
            labels.append(image_labels)
        return labels, matched_boxes

    def _loss(self, objectness, deltas, labels, regression_targets):
        positives, negatives = sample_balanced(labels, self.batch_size_per_image, self.positive_fraction)
        positive = torch.where(torch.cat(positives))[0]
        sampled = torch.cat([positive, torch.where(torch.cat(negatives))[0]])
        box_loss = F.smooth_l1_loss(deltas[positive], torch.cat(regression_targets)[positive], beta=1 / 9,
                                    reduction="sum") / sampled.numel()
        objectness_loss = F.binary_cross_entropy_with_logits(objectness.flatten()[sampled], torch.cat(labels)[sampled])
        return objectness_loss, box_loss


class TwoMLPHead(nn.Module):
    """RoI features -> two fully connected layers (the region feature)."""

    def __init__(self, in_channels: int, representation_size: int):
        super().__init__()
        self.fc6 = nn.Linear(in_channels, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc7(F.relu(self.fc6(x.flatten(start_dim=1)))))


class FastRCNNPredictor(nn.Module):
    """Region feature -> class logits and per-class box deltas."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, num_classes * 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)


class RoIHeads(nn.Module):
    """The box branch: RoI pooling, head and predictor. ``forward`` is the training loss on a
    balanced sample of proposals (plus the ground-truth boxes) matched to the ground truth;
    detection picks its own boxes from the parts (``RegionDetector._best_box_per_class``)."""

    def __init__(self, box_roi_pool: MultiScaleRoIAlign, box_head: TwoMLPHead, box_predictor: FastRCNNPredictor,
                 batch_size_per_image: int, positive_fraction: float = 0.25, iou_thresh: float = 0.5):
        super().__init__()
        self.box_roi_pool, self.box_head, self.box_predictor = box_roi_pool, box_head, box_predictor
        self.box_coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
        self.batch_size_per_image, self.positive_fraction, self.iou_thresh = (
            batch_size_per_image, positive_fraction, iou_thresh)

    def forward(self, features, proposals: list[torch.Tensor], image_sizes, targets: list[dict]):
        proposals, labels, regression_targets = self._training_samples(proposals, targets)
        pooled = self.box_head(self.box_roi_pool(features, proposals, image_sizes))
        class_logits, box_regression = self.box_predictor(pooled)
        labels, regression_targets = torch.cat(labels), torch.cat(regression_targets)
        classification_loss = F.cross_entropy(class_logits, labels)
        positive = torch.where(labels > 0)[0]
        box_regression = box_regression.reshape(len(class_logits), box_regression.size(-1) // 4, 4)
        box_loss = F.smooth_l1_loss(box_regression[positive, labels[positive]], regression_targets[positive],
                                    beta=1 / 9, reduction="sum") / labels.numel()
        return {"loss_classifier": classification_loss, "loss_box_reg": box_loss}

    def _training_samples(self, proposals, targets):
        dtype, device = proposals[0].dtype, proposals[0].device
        gt_boxes = [t["boxes"].to(dtype) for t in targets]
        proposals = [torch.cat((p, gt)) for p, gt in zip(proposals, gt_boxes)]
        matched_idxs, labels = [], []
        for image_proposals, gt, gt_labels in zip(proposals, gt_boxes, (t["labels"] for t in targets)):
            if gt.numel() == 0:
                matched_idxs.append(torch.zeros((len(image_proposals),), dtype=torch.int64, device=device))
                labels.append(torch.zeros((len(image_proposals),), dtype=torch.int64, device=device))
                continue
            matches = match(box_iou(gt, image_proposals), self.iou_thresh, self.iou_thresh, False)
            image_labels = gt_labels[matches.clamp(min=0)].to(torch.int64)
            image_labels[matches == BELOW_LOW_THRESHOLD] = 0
            image_labels[matches == BETWEEN_THRESHOLDS] = -1
            matched_idxs.append(matches.clamp(min=0))
            labels.append(image_labels)
        positives, negatives = sample_balanced(labels, self.batch_size_per_image, self.positive_fraction)
        matched_boxes = []
        for i, (pos, neg) in enumerate(zip(positives, negatives)):
            chosen = torch.where(pos | neg)[0]
            proposals[i], labels[i], matched_idxs[i] = proposals[i][chosen], labels[i][chosen], matched_idxs[i][chosen]
            gt = gt_boxes[i] if gt_boxes[i].numel() else torch.zeros((1, 4), dtype=dtype, device=device)
            matched_boxes.append(gt[matched_idxs[i]])
        return proposals, labels, self.box_coder.encode(matched_boxes, proposals)


class FasterRCNN(nn.Module):
    """The parts of a Faster R-CNN under torchvision's names: transform, backbone, rpn, roi_heads."""

    def __init__(self, backbone: nn.Module, transform: RCNNTransform, rpn: RegionProposalNetwork,
                 roi_heads: RoIHeads):
        super().__init__()
        self.transform, self.backbone, self.rpn, self.roi_heads = transform, backbone, rpn, roi_heads
