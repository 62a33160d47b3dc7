"""Per-region heads on the detector's region features (RGRG's selector and abnormality heads).

- selector: logit "this region gets a sentence" (RGRG's region selection),
- abnormality: logit "this region shows something abnormal" (drives highlighting and, in RGRG,
  helps the selector).
Both are small MLPs over [region feature ; learned region-type embedding], trained with BCE.
"""
from __future__ import annotations

from dataclasses import dataclass

from rrg_desk.models.config import ConfigDict

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class RegionHeadsConfig(ConfigDict):
    feature_dim: int = 256  # the detector's representation_size
    num_regions: int = 20
    hidden_dim: int = 128
    dropout: float = 0.1



def _mlp(in_dim: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 1))


class RegionHeads(nn.Module):
    def __init__(self, config: RegionHeadsConfig):
        super().__init__()
        self.config = config
        # The same feature means different things in different regions (a bright costophrenic
        # angle is abnormal, a bright heart is not), so the heads see which region it is.
        self.region_embedding = nn.Embedding(config.num_regions, config.feature_dim)
        nn.init.normal_(self.region_embedding.weight, std=0.02)
        self.norm = nn.LayerNorm(config.feature_dim)
        self.selector = _mlp(config.feature_dim, config.hidden_dim, config.dropout)
        self.abnormality = _mlp(config.feature_dim, config.hidden_dim, config.dropout)

    def forward(self, region_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """region_features [B, R, D] (R = num_regions, in REGION_NAMES order)
        -> (selector_logits [B, R], abnormal_logits [B, R])."""
        regions = torch.arange(region_features.shape[1], device=region_features.device)
        x = self.norm(region_features + self.region_embedding(regions)[None])  # [B, R, D]
        return self.selector(x).squeeze(-1), self.abnormality(x).squeeze(-1)

    def loss(self, region_features: torch.Tensor, selected: torch.Tensor, abnormal: torch.Tensor,
             valid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """BCE losses. selected/abnormal [B, R] in {0, 1}; valid [B, R] bool masks out regions
        without a label (e.g. a sentence-less study). Returns {"loss_selector", "loss_abnormal"}."""
        selector_logits, abnormal_logits = self(region_features)
        weight = None if valid is None else valid.to(selector_logits.dtype)
        return {
            "loss_selector": _masked_bce(selector_logits, selected.to(selector_logits.dtype), weight),
            "loss_abnormal": _masked_bce(abnormal_logits, abnormal.to(abnormal_logits.dtype), weight),
        }


def _masked_bce(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return F.binary_cross_entropy_with_logits(logits, targets)
    per_item = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (per_item * weight).sum() / weight.sum().clamp(min=1.0)
