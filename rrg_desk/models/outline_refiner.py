"""A second, closer look at each organ: outlines at the pixel scale of the detector's input.

The detector's mask head sees a box through stride-8 features pooled to 14 x 14 cells: about
6 cells across the height of a clavicle at 512 px, where a 3-pixel error costs a clavicle box
0.1 IoU. The refiner crops each organ's box (grown by ``context`` on every side) out of the
image the detector saw, resamples it to ``crop_size`` squared and segments it with a small
U-Net: the first five stages of an EfficientNet-Lite (outputs at strides 2, 4, 8, 16; ImageNet start, set
by the trainer) and a top-down decoder with skip connections, one logit map per organ at
stride 2 of the crop. The detector pastes the organ's own map back into the frame; its tight
box and outline then refine the detector's (``DetectorConfig.refiner_box_weight``).

Input convention: as the detector's (normalised single-channel images); crops are in the
detector's input pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from rrg_desk.models.config import ConfigDict
from rrg_desk.models.efficientnet_lite import EfficientNetLiteFeatures
from rrg_desk.models.rcnn_ops import paste_masks, roi_align
from rrg_desk.models.regions import SCR_ORGANS


@dataclass
class OutlineRefinerConfig(ConfigDict):
    regions: list[str] = field(default_factory=lambda: list(SCR_ORGANS))  # one output map each
    encoder: str = "tf_efficientnet_lite0"
    crop_size: int = 128
    context: float = 0.2  # the crop is the box grown by this share of its width/height on each side
    decoder_channels: int = 32

    def __post_init__(self) -> None:
        if not self.regions:
            raise ValueError("the outline refiner needs at least one region")
        if self.crop_size % 8:
            raise ValueError("crop_size must be a multiple of 8 (the encoder's stride)")
        if self.context < 0:
            raise ValueError("context must be >= 0")


class OutlineRefiner(nn.Module):
    ENCODER_STAGES = (0, 1, 2, 4)  # EfficientNet-Lite stages ending at strides 2, 4, 8, 16

    def __init__(self, config: OutlineRefinerConfig):
        super().__init__()
        self.config = config
        self.encoder = EfficientNetLiteFeatures.named(config.encoder, feature_stages=self.ENCODER_STAGES)
        width = config.decoder_channels
        self.laterals = nn.ModuleList(nn.Conv2d(c, width, 1) for c in self.encoder.feature_channels)
        self.smooth = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
            for _ in self.encoder.feature_channels[:-1])
        self.logits = nn.Conv2d(width, len(config.regions), 1)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """crops [N, 1, S, S] -> logits [N, M, S/2, S/2], one map per region."""
        features = self.encoder(crops)  # strides 2, 4, 8
        x = self.laterals[-1](features[-1])
        for level in range(len(features) - 2, -1, -1):
            skip = self.laterals[level](features[level])
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False) + skip
            x = self.smooth[level](x)
        return self.logits(x)

    def outlines(self, image: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """One image [1, H, W] and one box per region [M, 4] (config.regions order) -> each
        region's outline probability in the frame [M, H, W]."""
        grown = grow_boxes(boxes, self.config.context)
        logits = self(crop(image, grown, self.config.crop_size))
        own = torch.arange(len(boxes), device=logits.device)
        return paste_masks(logits[own, own].sigmoid(), grown, *image.shape[-2:])


def grow_boxes(boxes: torch.Tensor, context: float) -> torch.Tensor:
    """Boxes [K, 4] -> the crops' boxes: each grown by `context` of its width/height on every side."""
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.stack([boxes[:, 0] - context * width, boxes[:, 1] - context * height,
                        boxes[:, 2] + context * width, boxes[:, 3] + context * height], dim=1)


def crop(image: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """One image [1, H, W] and boxes [K, 4] -> [K, 1, size, size] resampled crops (zero outside the frame)."""
    rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], dim=1)
    return roi_align(image[None], rois, size, 1.0, sampling_ratio=2)


__all__ = ["OutlineRefiner", "OutlineRefinerConfig", "crop", "grow_boxes"]
