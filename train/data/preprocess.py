"""Image -> normalised tensor, with the preprocessing spec passed in (it lives in the model
card; nothing here hard-codes a size, mean or std)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from rrg_desk.imaging import read_image
from rrg_desk.models.preprocess import Preprocessing, prepare_image, window_to_unit


@dataclass(frozen=True)
class PreprocessSpec:
    """Square output size and per-channel mean/std; len(mean) is the channel count."""

    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.image_size <= 0:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError("mean and std need the same, non-zero number of channels")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be positive")

    @property
    def channels(self) -> int:
        return len(self.mean)

    @classmethod
    def from_mapping(cls, card: Mapping) -> "PreprocessSpec":
        """From a model card's "preprocessing" entry: {"image_size", "mean", "std"}."""
        return cls(int(card["image_size"]), tuple(float(v) for v in card["mean"]),
                   tuple(float(v) for v in card["std"]))


def pixels_to_unit_range(path: str | Path) -> np.ndarray:
    """Read a radiograph (DICOM/PNG/JPEG) and map its display window to [0, 1], HxW float32
    (the app's own window_to_unit, so training and inference see identical inputs)."""
    image = read_image(path)
    window = image.display_window()
    return window_to_unit(image.pixels, window.center, window.width)


def to_model_tensor(unit_pixels: np.ndarray, spec: PreprocessSpec) -> torch.Tensor:
    """[0, 1] HxW -> normalised (C, S, S) tensor, S = spec.image_size (aspect not kept), resized
    by the app's prepare_image; normalised per channel here."""
    resized, _scale = prepare_image(unit_pixels, Preprocessing(spec.image_size, mean=0.0, std=1.0))
    tensor = resized.expand(spec.channels, -1, -1)
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).view(-1, 1, 1)
    return (tensor - mean) / std


def load_image_tensor(path: str | Path, spec: PreprocessSpec) -> tuple[torch.Tensor, tuple[int, int]]:
    """(normalised (C, S, S) tensor, original (height, width))."""
    unit = pixels_to_unit_range(path)
    return to_model_tensor(unit, spec), (int(unit.shape[0]), int(unit.shape[1]))


def scale_boxes(boxes: Sequence[Sequence[float]], original_hw: tuple[int, int], spec: PreprocessSpec) -> torch.Tensor:
    """Boxes in original pixels -> boxes in the (S, S) model frame, float32 (N, 4)."""
    height, width = original_hw
    scale = torch.tensor([spec.image_size / width, spec.image_size / height] * 2, dtype=torch.float32)
    return torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4) * scale
