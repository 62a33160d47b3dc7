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
from train.data.preprocess import PreprocessSpec, load_image_tensor, scale_boxes


def region_label(name: str) -> int:
    """Detector class id: 1 + index in REGION_NAMES (0 is torchvision's background)."""
    return REGION_NAMES.index(name) + 1


class JsrtRegionDataset(Dataset):
    """Items: {"id", "image": (C, S, S), "boxes": (R, 4) in the S x S frame, "labels": (R,),
    "region_names": [...], "has_nodule": bool} with regions in REGION_NAMES order."""

    def __init__(self, root: str | Path, split: str, spec: PreprocessSpec, *, from_masks: bool = True,
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
            masks = {organ: np.asarray(Image.open(self.root / "masks" / organ / f"{image_id}.png").convert("L"))
                     for organ in SCR_ORGANS}
            self._derived[image_id] = derive_region_boxes(masks)
        return self._derived[image_id]

    def __getitem__(self, index: int) -> dict:
        image_id = self.ids[index]
        image, original_hw = load_image_tensor(self.root / "images" / f"{image_id}.png", self.spec)
        boxes = self.region_boxes(image_id)
        names = [r for r in self.regions if r in boxes]
        return {
            "id": image_id,
            "image": image,
            "boxes": scale_boxes([boxes[r] for r in names], original_hw, self.spec),
            "labels": torch.tensor([region_label(r) for r in names], dtype=torch.int64),
            "region_names": names,
            "has_nodule": image_id.startswith("JPCLN"),
        }
