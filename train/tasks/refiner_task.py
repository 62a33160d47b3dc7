"""The detector's outline refiner (rrg_desk/models/outline_refiner.py) on JSRT's SCR organ masks,
and the choice, on validation, of how far the detector's boxes follow its outlines.

Training crops come from the ground-truth boxes moved by up to ``box_jitter`` of their size on
each side (the detector's boxes are off by 1-6% of an organ's size), so the refiner learns to
outline an organ whose box is not exact. It does not depend on the detector's weights; the box
weight is chosen with the trained detector, on the validation images.
"""
from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rrg_desk.models.detector import RegionDetector, jitter_boxes, mask_targets
from rrg_desk.models.outline_refiner import OutlineRefiner, OutlineRefinerConfig, crop, grow_boxes
from rrg_desk.models.regions import SCR_ORGANS
from train.tasks.common import run_dir
from train.tasks.detector_task import evaluate_detector, jsrt_regions

log = logging.getLogger(__name__)
SELECTION_FILE = "box_weight.json"


def refiner_section(config: dict) -> dict | None:
    """The config's `detector.refiner` section, or None when the detector has no refiner."""
    section = config["detector"].get("refiner")
    return section or None


def build_refiner(config: dict) -> OutlineRefiner:
    regions = list(config["detector"].get("model", {}).get("mask_regions", ()))
    model = {"regions": regions, **refiner_section(config).get("model", {})}
    return OutlineRefiner(OutlineRefinerConfig.from_dict(model))


class RefinerTask:
    name = "refiner"

    def __init__(self, config: dict) -> None:
        self.config = config
        self.section = refiner_section(config)
        self.train_set, self.val_set = jsrt_regions(config, "train"), jsrt_regions(config, "val")
        self.model_config = build_refiner(config).config
        self.box_jitter = float(self.section.get("box_jitter", 0.08))

    def build_model(self) -> nn.Module:
        model = build_refiner(self.config)
        if self.section.get("pretrained", False):  # the encoder's first stages start from ImageNet
            from train.pretrained import load_imagenet_features

            self.pretrained_provenance = load_imagenet_features(model.encoder, model.config.encoder)
        return model

    def datasets(self):
        return self.train_set, self.val_set

    def collate(self, batch):
        return batch

    def loss(self, model, batch, device):
        crops, channels, targets = organ_crops(batch, self.model_config, self.box_jitter, augment=True)
        logits = model(crops.to(device))
        chosen = logits[torch.arange(len(channels)), channels.to(device)]
        targets = targets.to(device)
        bce = F.binary_cross_entropy_with_logits(chosen, targets)
        probabilities = chosen.sigmoid().flatten(1)
        overlap = (probabilities * targets.flatten(1)).sum(1)
        dice = 1.0 - (2 * overlap + 1.0) / (probabilities.sum(1) + targets.flatten(1).sum(1) + 1.0)
        total = bce + dice.mean()
        return total, {"bce": float(bce.detach()), "soft_dice_loss": float(dice.mean().detach())}

    def validate(self, model, dataset, device):
        """Dice of each outline in its crop around the exact ground-truth box (no jitter)."""
        scores: dict[str, list[float]] = {r: [] for r in self.model_config.regions}
        for start in range(0, len(dataset), 8):
            batch = [dataset[i] for i in range(start, min(start + 8, len(dataset)))]
            crops, channels, targets = organ_crops(batch, self.model_config, 0.0, augment=False)
            logits = model(crops.to(device))
            predicted = logits[torch.arange(len(channels)), channels.to(device)].cpu() >= 0
            for p, t, c in zip(predicted, targets >= 0.5, channels.tolist()):
                total = int(p.sum()) + int(t.sum())
                scores[self.model_config.regions[c]].append(1.0 if total == 0 else 2.0 * int((p & t).sum()) / total)
        per_region = {r: float(np.mean(v)) for r, v in scores.items() if v}
        return {"val_mean_dice": float(np.mean(list(per_region.values()))),
                **{f"val_dice_{r}": v for r, v in per_region.items()}}


def organ_crops(items, config: OutlineRefinerConfig, jitter: float, augment: bool):
    """(crops [N, 1, S, S], region channel [N], target masks [N, S/2, S/2]) of every organ the
    JSRT items have, each crop grown around its ground-truth box moved by up to `jitter` of its size."""
    crops, channels, targets = [], [], []
    for item in items:
        image = item["image"]
        if augment:  # contrast and brightness, as the detector's augmentation
            image = image * random.uniform(0.85, 1.15) + random.uniform(-0.15, 0.15)
        for channel, region in enumerate(config.regions):
            mask = item["masks"][SCR_ORGANS.index(region)]
            if region not in item["region_names"] or not mask.any():
                continue
            box = item["boxes"][item["region_names"].index(region)][None].float()
            grown = grow_boxes(jitter_boxes(box, jitter, image.shape[-2:]), config.context)
            crops.append(crop(image, grown, config.crop_size))
            targets.append(mask_targets(mask[None], grown, config.crop_size // 2))
            channels.append(channel)
    return torch.cat(crops), torch.tensor(channels), torch.cat(targets)


def choose_box_weight(config: dict, detector: RegionDetector, refiner: OutlineRefiner, device) -> dict:
    """How far the detector's organ boxes follow the refiner's outline boxes: the weight in the
    config's `box_weights` with the best five-organ mean IoU on the validation images (ties go to
    the smaller weight); written beside the refiner's run."""
    dataset = jsrt_regions(config, "val")
    organs = list(refiner.config.regions)
    by_weight = {}
    for weight in refiner_section(config).get("box_weights", [0.0, 0.25, 0.5, 0.75, 1.0]):
        detector.attach_refiner(refiner, float(weight))
        with torch.inference_mode():
            result = evaluate_detector(detector.to(device).eval(), dataset, device)
        by_weight[float(weight)] = {
            "organs_mean_iou": float(np.mean([result["iou_per_region"][o] for o in organs
                                              if o in result["iou_per_region"]])),
            "mean_iou": result["mean_iou"], "mean_dice": result.get("mean_dice")}
        log.info("refiner box weight %.2f: validation five-organ IoU %.4f, all regions %.4f, Dice %s",
                 weight, by_weight[float(weight)]["organs_mean_iou"], result["mean_iou"], result.get("mean_dice"))
    best = max(by_weight, key=lambda w: (round(by_weight[w]["organs_mean_iou"], 6), -w))
    return {"box_weight": best, "validation": {str(w): v for w, v in by_weight.items()}}


def attach_trained_refiner(config: dict, detector: RegionDetector) -> RegionDetector:
    """The refiner run's best weights and chosen box weight on `detector` (unchanged when the
    config has no refiner or it is not trained yet)."""
    from train.export import _weights

    folder = run_dir(config, "refiner")
    if refiner_section(config) is None or not (folder / SELECTION_FILE).exists():
        return detector
    refiner = build_refiner(config)
    refiner.load_state_dict(_weights(folder))
    choice = json.loads((folder / SELECTION_FILE).read_text(encoding="utf-8"))
    detector.attach_refiner(refiner, choice["box_weight"])
    return detector


def write_selection(folder: Path, selection: dict) -> None:
    (Path(folder) / SELECTION_FILE).write_text(json.dumps(selection, indent=1), encoding="utf-8")
