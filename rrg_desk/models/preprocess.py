"""Image -> model input, driven only by the card's preprocessing section.

Shared by the app and the trainer so both feed the models identically. Input is a
grey image already mapped to [0, 1] for display (bone white), as a radiologist sees it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Preprocessing:
    image_size: int  # longest side after resizing
    mean: float
    std: float

    @classmethod
    def from_card(cls, card_section: dict) -> "Preprocessing":
        return cls(image_size=int(card_section["image_size"]), mean=float(card_section["mean"]),
                   std=float(card_section["std"]))


def resized_shape(height: int, width: int, image_size: int) -> tuple[int, int]:
    scale = image_size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def prepare_image(gray01: np.ndarray | torch.Tensor, spec: Preprocessing) -> tuple[torch.Tensor, float]:
    """[H, W] in [0, 1] -> ([1, h, w] normalised float32 with max(h, w) = image_size, scale).

    `scale` maps model-input pixels back to the original: x_original = x_model / scale.
    """
    image = torch.as_tensor(np.asarray(gray01, dtype=np.float32) if not isinstance(gray01, torch.Tensor)
                            else gray01.float())
    if image.ndim != 2 or image.numel() == 0:
        raise ValueError(f"expected a non-empty [H, W] image, got shape {tuple(image.shape)}")
    height, width = image.shape
    new_h, new_w = resized_shape(height, width, spec.image_size)
    if (new_h, new_w) != (height, width):
        image = F.interpolate(image[None, None], size=(new_h, new_w), mode="bilinear",
                              align_corners=False, antialias=True)[0, 0]
    image = (image.clamp(0.0, 1.0) - spec.mean) / spec.std
    return image[None], new_w / width


def window_to_unit(pixels: np.ndarray, center: float, width: float) -> np.ndarray:
    """Display window -> float32 [0, 1] (what the radiologist sees; 8-bit PNG / 255 when the
    window spans 0..255)."""
    low = center - width / 2.0
    return np.clip((np.asarray(pixels, dtype=np.float32) - low) / max(width, 1e-6), 0.0, 1.0)
