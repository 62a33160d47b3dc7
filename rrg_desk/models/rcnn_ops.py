"""Box operations of the region detector, in plain torch plus torchvision's compiled kernels.

RoIAlign and NMS run torchvision's own C++ kernels, loaded straight from its shared library:
importing the torchvision package would also import ``torch._dynamo`` (about 2.5 s of a cold
``rrg-desk draft``) for nothing a draft needs. Everything else here follows torchvision's
algorithms (BSD-3-Clause) line for line, so results match it; ``tests/models/test_rcnn.py``
checks that against torchvision itself.
"""
from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@functools.cache
def _kernels():
    """torch.ops.torchvision, registered from torchvision's shared library (once per process)."""
    if not hasattr(torch.ops.torchvision, "nms"):  # not registered yet (torchvision not imported)
        spec = importlib.util.find_spec("torchvision")
        folders = list(spec.submodule_search_locations or []) if spec else []
        libraries = [p for folder in folders for p in sorted(Path(folder).glob("_C*.so")) + sorted(Path(folder).glob("_C*.pyd"))]
        if not libraries:
            raise RuntimeError("torchvision's compiled operators (RoIAlign, NMS) were not found; "
                               "reinstall the pinned torchvision")
        torch.ops.load_library(str(libraries[0]))
    return torch.ops.torchvision


class _RoIAlign(torch.autograd.Function):
    """torchvision's RoIAlign kernel with its backward kernel (aligned=False, as Faster R-CNN's)."""

    @staticmethod
    def forward(ctx, features, rois, spatial_scale: float, size: int, sampling_ratio: int):
        ctx.save_for_backward(rois)
        ctx.shape, ctx.spatial_scale, ctx.size, ctx.sampling_ratio = features.shape, spatial_scale, size, sampling_ratio
        return _kernels().roi_align(features, rois, spatial_scale, size, size, sampling_ratio, False)

    @staticmethod
    def backward(ctx, grad_output):
        (rois,) = ctx.saved_tensors
        batch, channels, height, width = ctx.shape
        grad = _kernels()._roi_align_backward(grad_output.contiguous(), rois, ctx.spatial_scale, ctx.size, ctx.size,
                                              batch, channels, height, width, ctx.sampling_ratio, False)
        return grad, None, None, None, None


def roi_align(features: torch.Tensor, rois: torch.Tensor, size: int, spatial_scale: float,
              sampling_ratio: int) -> torch.Tensor:
    """features [B, C, H, W], rois [K, 5] (batch index, x0, y0, x1, y1 in image pixels) -> [K, C, size, size]."""
    return _RoIAlign.apply(features, rois.to(features.dtype), float(spatial_scale), int(size), int(sampling_ratio))


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes kept, by decreasing score."""
    return _kernels().nms(boxes, scores, float(iou_threshold))


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_threshold: float
                ) -> torch.Tensor:
    """NMS within each group only (boxes of different groups are moved apart so they never overlap)."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    offsets = groups.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """[N, 4] x [M, 4] (x0, y0, x1, y1) -> [N, M] intersection over union."""
    top_left = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (box_area(boxes1)[:, None] + box_area(boxes2) - inter)


def clip_boxes_to_image(boxes: torch.Tensor, size) -> torch.Tensor:
    """Boxes [..., 4] clamped into a height x width frame (size = (height, width))."""
    height, width = size
    x = boxes[..., 0::2].clamp(min=0, max=width)
    y = boxes[..., 1::2].clamp(min=0, max=height)
    return torch.stack((x, y), dim=boxes.dim()).reshape(boxes.shape)


def remove_small_boxes(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    """Indices of the boxes at least min_size wide and high."""
    keep = (boxes[:, 2] - boxes[:, 0] >= min_size) & (boxes[:, 3] - boxes[:, 1] >= min_size)
    return torch.where(keep)[0]


def resize_boxes(boxes: torch.Tensor, original_size, new_size) -> torch.Tensor:
    """Boxes [N, 4] in an original_size (height, width) frame -> the same boxes in new_size."""
    ratio_height, ratio_width = (torch.tensor(s, dtype=torch.float32, device=boxes.device)
                                 / torch.tensor(s_orig, dtype=torch.float32, device=boxes.device)
                                 for s, s_orig in zip(new_size, original_size))
    xmin, ymin, xmax, ymax = boxes.unbind(1)
    return torch.stack((xmin * ratio_width, ymin * ratio_height, xmax * ratio_width, ymax * ratio_height), dim=1)


class BoxCoder:
    """Box deltas (dx, dy, dw, dh) scaled by `weights`, relative to reference boxes (Faster R-CNN's)."""

    def __init__(self, weights: tuple[float, float, float, float], clip: float = math.log(1000.0 / 16)):
        self.weights, self.clip = weights, clip

    def encode(self, targets: list[torch.Tensor], references: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Per image: the deltas that turn each reference box into its target box."""
        counts = [len(b) for b in targets]
        target, reference = torch.cat(targets), torch.cat(references)
        wx, wy, ww, wh = torch.as_tensor(self.weights, dtype=target.dtype, device=target.device)
        ref_w, ref_h = reference[:, 2:3] - reference[:, 0:1], reference[:, 3:4] - reference[:, 1:2]
        ref_x, ref_y = reference[:, 0:1] + 0.5 * ref_w, reference[:, 1:2] + 0.5 * ref_h
        gt_w, gt_h = target[:, 2:3] - target[:, 0:1], target[:, 3:4] - target[:, 1:2]
        gt_x, gt_y = target[:, 0:1] + 0.5 * gt_w, target[:, 1:2] + 0.5 * gt_h
        deltas = torch.cat((wx * (gt_x - ref_x) / ref_w, wy * (gt_y - ref_y) / ref_h,
                            ww * torch.log(gt_w / ref_w), wh * torch.log(gt_h / ref_h)), dim=1)
        return deltas.split(counts, 0)

    def decode(self, deltas: torch.Tensor, references: list[torch.Tensor]) -> torch.Tensor:
        """deltas [N, C*4] for the references of all images (N in all) -> boxes [N, C, 4]."""
        reference = torch.cat(references).to(deltas.dtype)
        if len(reference):
            deltas = deltas.reshape(len(reference), -1)
        widths, heights = reference[:, 2] - reference[:, 0], reference[:, 3] - reference[:, 1]
        ctr_x, ctr_y = reference[:, 0] + 0.5 * widths, reference[:, 1] + 0.5 * heights
        wx, wy, ww, wh = self.weights
        dw = torch.clamp(deltas[:, 2::4] / ww, max=self.clip)
        dh = torch.clamp(deltas[:, 3::4] / wh, max=self.clip)
        x = deltas[:, 0::4] / wx * widths[:, None] + ctr_x[:, None]
        y = deltas[:, 1::4] / wy * heights[:, None] + ctr_y[:, None]
        half_w = torch.tensor(0.5, dtype=x.dtype, device=x.device) * (torch.exp(dw) * widths[:, None])
        half_h = torch.tensor(0.5, dtype=y.dtype, device=y.device) * (torch.exp(dh) * heights[:, None])
        boxes = torch.stack((x - half_w, y - half_h, x + half_w, y + half_h), dim=2).flatten(1)
        return boxes.reshape(len(reference), -1, 4) if len(reference) else boxes


class MultiScaleRoIAlign(nn.Module):
    """RoIAlign of each box on the FPN level its size maps to (the FPN paper's rule: 224 px boxes
    on level 4), torchvision's MultiScaleRoIAlign."""

    def __init__(self, featmap_names: list[str], output_size: int, sampling_ratio: int):
        super().__init__()
        self.featmap_names, self.output_size, self.sampling_ratio = featmap_names, output_size, sampling_ratio

    def forward(self, features: dict[str, torch.Tensor], boxes: list[torch.Tensor], image_sizes) -> torch.Tensor:
        levels = [v for k, v in features.items() if k in self.featmap_names]
        tallest = (max(s[0] for s in image_sizes), max(s[1] for s in image_sizes))
        scales = [2 ** float(torch.tensor(float(f.shape[-2]) / float(tallest[0])).log2().round()) for f in levels]
        rois = torch.cat([torch.cat([torch.full_like(b[:, :1], i), b], dim=1) for i, b in enumerate(boxes)])
        if len(levels) == 1:
            return roi_align(levels[0], rois, self.output_size, scales[0], self.sampling_ratio)
        k_min = int(-torch.log2(torch.tensor(scales[0], dtype=torch.float32)).item())
        k_max = int(-torch.log2(torch.tensor(scales[-1], dtype=torch.float32)).item())
        sizes = torch.sqrt(torch.cat([box_area(b) for b in boxes]))
        target = torch.floor(4 + torch.log2(sizes / 224) + torch.tensor(1e-6, dtype=sizes.dtype))
        level_of_box = torch.clamp(target, min=k_min, max=k_max).to(torch.int64) - k_min
        result = levels[0].new_zeros((len(rois), levels[0].shape[1], self.output_size, self.output_size))
        for level, (feature, scale) in enumerate(zip(levels, scales)):
            index = torch.where(level_of_box == level)[0]
            result[index] = roi_align(feature, rois[index], self.output_size, scale,
                                      self.sampling_ratio).to(result.dtype)
        return result


def paste_masks(masks: torch.Tensor, boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Box-relative masks [M, S, S] + their boxes [M, 4] in a height x width frame -> [M, H, W]
    probabilities in that frame (zero outside each box); Mask R-CNN's paste with one cell of padding."""
    if len(masks) == 0:
        return masks.new_zeros(0, height, width)
    size = masks.shape[-1]
    padded = F.pad(masks.float(), (1, 1, 1, 1))
    scale = (size + 2.0) / size
    boxes = boxes.float()
    half_w, half_h = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale, (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    ctr_x, ctr_y = (boxes[:, 2] + boxes[:, 0]) * 0.5, (boxes[:, 3] + boxes[:, 1]) * 0.5
    expanded = torch.stack([ctr_x - half_w, ctr_y - half_h, ctr_x + half_w, ctr_y + half_h], dim=1).to(torch.int64)
    return torch.stack([_paste_one(mask, box, height, width) for mask, box in zip(padded, expanded)])


def _paste_one(mask: torch.Tensor, box: torch.Tensor, height: int, width: int) -> torch.Tensor:
    x0_box, y0_box, x1_box, y1_box = (int(v) for v in box)
    w, h = max(x1_box - x0_box + 1, 1), max(y1_box - y0_box + 1, 1)
    resized = F.interpolate(mask[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    frame = torch.zeros((height, width), dtype=resized.dtype, device=resized.device)
    x0, x1 = max(x0_box, 0), min(x1_box + 1, width)
    y0, y1 = max(y0_box, 0), min(y1_box + 1, height)
    frame[y0:y1, x0:x1] = resized[y0 - y0_box:y1 - y0_box, x0 - x0_box:x1 - x0_box]
    return frame
