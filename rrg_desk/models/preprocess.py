"""Image -> model input, driven only by the card's preprocessing section (rrg_desk.models.card.Preprocessing).

Shared by the app and the trainer so both feed the models identically. Input is a
grey image already mapped to [0, 1] for display (bone white), as a radiologist sees it.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rrg_desk.models.card import Preprocessing


def prepare_image(gray01: np.ndarray | torch.Tensor, spec: Preprocessing) -> tuple[torch.Tensor, tuple[float, float]]:
    """[H, W] in [0, 1] -> ([1, S, S] normalised float32, (sx, sy)), S = image_size.

    Squashed to a square like the trainer does (radiographs are near-square, and the
    heatmap grid then covers exactly the image). x_original = x_model / sx, y / sy.
    """
    image = torch.as_tensor(np.asarray(gray01, dtype=np.float32)) if not isinstance(gray01, torch.Tensor) \
        else gray01.float()
    if image.ndim != 2 or image.numel() == 0:
        raise ValueError(f"expected a non-empty [H, W] image, got shape {tuple(image.shape)}")
    height, width = image.shape
    size = spec.image_size
    if (height, width) != (size, size):
        image = F.interpolate(image[None, None], size=(size, size), mode="bilinear",
                              align_corners=False, antialias=True)[0, 0]
    image = (image.clamp(0.0, 1.0) - spec.mean) / spec.std
    return image[None], (size / width, size / height)


def window_to_unit(pixels: np.ndarray, center: float, width: float) -> np.ndarray:
    """Display window -> float32 [0, 1] (what the radiologist sees; 8-bit PNG / 255 when the
    window spans 0..255)."""
    low = center - width / 2.0
    return np.clip((np.asarray(pixels, dtype=np.float32) - low) / max(width, 1e-6), 0.0, 1.0)
