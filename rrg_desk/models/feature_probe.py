"""A second opinion for the finding classifier: logistic regression per finding on the pooled
features of an ImageNet EfficientNet-Lite that is never trained on radiographs.

Why: fine-tuned on ~2,000 mixed-source images, the classifier learns what tells our sources
apart as much as what tells findings apart; features learnt on ImageNet know nothing about
our sources. On validation the two rank findings differently and their mean ranks better than
either (docs/training.md). The app mixes the two in logit space with the weight the trainer
chose on validation (the card's classification.probe_weight).

The trainer (train/feature_probe.py) fits the regression on standardised features and folds
the standardisation into `head`, so here the probe is one backbone pass and one linear layer.
Inputs are the classifier's: normalised single-channel images [B, 1, H, W], resized here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from rrg_desk.models.config import ConfigDict
from rrg_desk.models.efficientnet_lite import EfficientNetLite
from rrg_desk.models.findings import FINDING_NAMES
from rrg_desk.models.grad_cam import grad_cam


@dataclass
class FeatureProbeConfig(ConfigDict):
    backbone: str = "tf_efficientnet_lite0"  # an EfficientNet-Lite: the only ImageNet weights allowed
    image_size: int = 384
    finding_names: list[str] = field(default_factory=lambda: list(FINDING_NAMES))


class FeatureProbe(nn.Module):
    def __init__(self, config: FeatureProbeConfig):
        super().__init__()
        self.config = config
        self.backbone = EfficientNetLite.named(config.backbone)
        self.head = nn.Linear(self.backbone.num_features, len(config.finding_names))

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,1,H,W] -> the backbone's last feature map at config.image_size square."""
        size = self.config.image_size
        if images.shape[-2:] != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return self.backbone.forward_features(images)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,1,H,W] -> pooled ImageNet features [B,C]."""
        return self.backbone.forward_head(self.feature_map(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,1,H,W] -> finding logits [B,F]."""
        return self.head(self.features(images))

    def finding_heatmaps(self, images: torch.Tensor, finding_index: int) -> torch.Tensor:
        """Grad-CAM of one finding's logit: [B,1,H,W] -> [B,g,g] in [0,1]."""
        return grad_cam(images, self.feature_map,
                        lambda fmap: self.head(self.backbone.forward_head(fmap))[:, finding_index])

    def set_regression(self, mean: torch.Tensor, std: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor) -> None:
        """Load a regression fitted on standardised features, (x - mean) / std @ weights [C,F] + bias [F],
        as the equivalent linear layer on raw features."""
        scaled = weights / std[:, None]
        with torch.no_grad():
            self.head.weight.copy_(scaled.T.to(self.head.weight.dtype))
            self.head.bias.copy_((bias - mean @ scaled).to(self.head.bias.dtype))


def mix_logits(probabilities: torch.Tensor, probe_logits: torch.Tensor, probe_weight: float) -> torch.Tensor:
    """[.., F] probabilities mixed with the probe's logits: sigmoid((1 - w) logit(p) + w probe)."""
    logits = torch.logit(probabilities.clamp(1e-6, 1 - 1e-6))
    return torch.sigmoid((1.0 - probe_weight) * logits + probe_weight * probe_logits)
