"""JSRT + SCR masks -> images with anatomical region boxes, for training the region detector.

Layout: images/<id>.png, masks/<organ>/<id>.png (the five SCR organs), boxes.json, split.json.
Region boxes come from rrg_desk.models.regions.derive_region_boxes (organ masks -> all
REGION_NAMES); `from_masks=False` uses boxes.json, which holds the five organs only.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from rrg_desk.models.regions import REGION_NAMES, SCR_ORGANS, derive_region_boxes
from rrg_desk.models.card import Preprocessing
from train.data.preprocess import load_image_tensor, scale_boxes


def region_label(name: str) -> int:
    """Detector class id: 1 + index in REGION_NAMES (0 is torchvision's background)."""
    return REGION_NAMES.index(name) + 1


class JsrtRegionDataset(Dataset):
    """Items: {"id", "image": (C, S, S), "boxes": (R, 4) in the S x S frame, "labels": (R,),
    "region_names": [...], "masks": (5, S, S) uint8 of SCR_ORGANS (with from_masks),
    "has_nodule": bool} with regions in REGION_NAMES order."""

    def __init__(self, root: str | Path, split: str, spec: Preprocessing, *, from_masks: bool = True,
                 regions: tuple[str, ...] = REGION_NAMES) -> None:
        self.root = Path(root)
        self.spec = spec
        self.from_masks = from_masks
        splits = json.loads((self.root / "split.json").read_text(encoding="utf-8"))
        if split not in splits:
            raise KeyError(f"{self.root / 'split.json'} has no {split!r} split (it has {sorted(splits)})")
        self.ids: list[str] = list(splits[split])
        unknown = [r for r in regions if r not in REGION_NAMES]
        if unknown:
            raise ValueError(f"unknown regions: {unknown}")
        self.regions = regions if from_masks else tuple(r for r in regions if r in SCR_ORGANS)
        self._organ_boxes = json.loads((self.root / "boxes.json").read_text(encoding="utf-8"))["boxes"]
        self._derived: dict[str, dict] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def region_boxes(self, image_id: str) -> dict[str, tuple[float, float, float, float]]:
        """Boxes in original pixels (derived from the masks once, then cached)."""
        if not self.from_masks:
            return {organ: tuple(map(float, box)) for organ, box in self._organ_boxes[image_id].items()}
        if image_id not in self._derived:
            self._derived[image_id] = derive_region_boxes(self._organ_masks(image_id))
        return self._derived[image_id]

    def _organ_masks(self, image_id: str) -> dict[str, np.ndarray]:
        return {organ: np.asarray(Image.open(self.root / "masks" / organ / f"{image_id}.png").convert("L"))
                for organ in SCR_ORGANS}

    def frame_masks(self, image_id: str) -> torch.Tensor:
        """The five organ masks resized (nearest) to the S x S model frame -> (5, S, S) uint8."""
        size = (self.spec.image_size, self.spec.image_size)
        return torch.from_numpy(np.stack([
            np.asarray(Image.fromarray(mask > 0).resize(size, Image.NEAREST), dtype=np.uint8)
            for mask in self._organ_masks(image_id).values()]))

    def __getitem__(self, index: int) -> dict:
        image_id = self.ids[index]
        image, original_hw = load_image_tensor(self.root / "images" / f"{image_id}.png", self.spec)
        boxes = self.region_boxes(image_id)
        names = [r for r in self.regions if r in boxes]
        item = {
            "id": image_id,
            "image": image,
            "boxes": scale_boxes([boxes[r] for r in names], original_hw, self.spec),
            "labels": torch.tensor([region_label(r) for r in names], dtype=torch.int64),
            "region_names": names,
            "has_nodule": image_id.startswith("JPCLN"),
        }
        if self.from_masks:
            item["masks"] = self.frame_masks(image_id)
        return item
