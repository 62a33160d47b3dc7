"""Image -> normalised tensor, with the preprocessing spec passed in: the model card's
(rrg_desk.models.card.Preprocessing, shared with the app); nothing here hard-codes a size,
mean or std."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from rrg_desk.imaging import read_image
from rrg_desk.models.card import Preprocessing
from rrg_desk.models.preprocess import prepare_image, window_to_unit


def pixels_to_unit_range(path: str | Path) -> np.ndarray:
    """Read a radiograph (DICOM/PNG/JPEG) and map its display window to [0, 1], HxW float32
    (the app's own window_to_unit, so training and inference see identical inputs)."""
    image = read_image(path)
    window = image.display_window()
    return window_to_unit(image.pixels, window.center, window.width)


def to_model_tensor(unit_pixels: np.ndarray, spec: Preprocessing) -> torch.Tensor:
    """[0, 1] HxW -> normalised (1, S, S) tensor, S = spec.image_size (aspect not kept): the
    app's prepare_image, so training and drafting see identical inputs."""
    return prepare_image(unit_pixels, spec)[0]


def load_image_tensor(path: str | Path, spec: Preprocessing) -> tuple[torch.Tensor, tuple[int, int]]:
    """(normalised (C, S, S) tensor, original (height, width))."""
    unit = pixels_to_unit_range(path)
    return to_model_tensor(unit, spec), (int(unit.shape[0]), int(unit.shape[1]))


def scale_boxes(boxes: Sequence[Sequence[float]], original_hw: tuple[int, int], spec: Preprocessing) -> torch.Tensor:
    """Boxes in original pixels -> boxes in the (S, S) model frame, float32 (N, 4)."""
    height, width = original_hw
    scale = torch.tensor([spec.image_size / width, spec.image_size / height] * 2, dtype=torch.float32)
    return torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4) * scale
