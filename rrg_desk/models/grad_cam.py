"""Grad-CAM (Selvaraju et al.) of a score over a network's last feature map."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def grad_cam(images: torch.Tensor, feature_map: Callable[[torch.Tensor], torch.Tensor],
             score: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """images [B,...] -> [B,g,g] in [0,1]: channel weights are the spatially averaged gradients of
    score(feature_map(images)) [B]; negative evidence is clipped. Works inside
    torch.inference_mode() (it briefly leaves it; `score` runs outside it too)."""
    with torch.inference_mode(False), torch.enable_grad():
        fmap = feature_map(images.clone())                                # [B,C,g,g]
        (gradients,) = torch.autograd.grad(score(fmap).sum(), fmap)
    weights = gradients.mean(dim=(2, 3), keepdim=True)                    # [B,C,1,1]
    cam = F.relu((weights * fmap).sum(dim=1)).detach()                    # [B,g,g]
    return cam / cam.amax(dim=(1, 2), keepdim=True).clamp(min=1e-8)
