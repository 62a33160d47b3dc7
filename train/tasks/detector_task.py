"""Region detector on JSRT: boxes for every region derived from the SCR organ masks."""
from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn

from rrg_desk.models.detector import DetectorConfig, RegionDetector
from rrg_desk.models.regions import REGION_NAMES
from train.data.jsrt import JsrtRegionDataset
from train.metrics import detector_metrics
from train.tasks.common import CachedDataset, limit, spec_of


def build_detector(config: dict) -> RegionDetector:
    if config.get("tiny"):
        base = DetectorConfig.tiny().to_dict()
    else:
        base = DetectorConfig().to_dict()
    base.update(config["detector"].get("model", {}))
    base["image_size"] = int(config["preprocessing"]["image_size"])
    return RegionDetector(DetectorConfig.from_dict(base))


def _augment(image: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Contrast/brightness/gamma jitter and a small shift (no flips: left and right differ)."""
    size = image.shape[-1]
    gain, bias = random.uniform(0.85, 1.15), random.uniform(-0.15, 0.15)
    image = image * gain + bias
    limit_px = int(0.04 * size)
    dx, dy = random.randint(-limit_px, limit_px), random.randint(-limit_px, limit_px)
    image = torch.roll(image, shifts=(dy, dx), dims=(-2, -1))
    boxes = (boxes + torch.tensor([dx, dy, dx, dy], dtype=boxes.dtype)).clamp(0, size)
    return image, boxes


class DetectorTask:
    name = "detector"

    def __init__(self, config: dict) -> None:
        self.config = config
        self.spec = spec_of(config)
        root = config["data"]["jsrt"]
        anatomical = tuple(r for r in REGION_NAMES if r != "whole_image")  # whole_image is the frame, not a class
        self.train_set = CachedDataset(JsrtRegionDataset(root, "train", self.spec, regions=anatomical), limit(config))
        self.val_set = CachedDataset(JsrtRegionDataset(root, "val", self.spec, regions=anatomical), limit(config))
        self.augment = bool(config["detector"].get("augment", True))

    def build_model(self) -> nn.Module:
        model = build_detector(self.config)
        model.set_prior_boxes(self.mean_relative_boxes())
        return model

    def mean_relative_boxes(self) -> torch.Tensor:
        """Per region, the mean training box relative to the frame: used when not detected."""
        size = float(self.spec.image_size)
        sums = torch.zeros(len(REGION_NAMES), 4)
        counts = torch.zeros(len(REGION_NAMES), 1)
        for i in range(len(self.train_set)):
            item = self.train_set[i]
            for box, label in zip(item["boxes"], item["labels"]):
                sums[label - 1] += box / size
                counts[label - 1] += 1
        priors = torch.where(counts > 0, sums / counts.clamp(min=1), torch.tensor([0.0, 0.0, 1.0, 1.0]))
        priors[REGION_NAMES.index("whole_image")] = torch.tensor([0.0, 0.0, 1.0, 1.0])
        return priors

    def datasets(self):
        return self.train_set, self.val_set

    def collate(self, batch):
        return batch

    def loss(self, model, batch, device):
        images, targets = [], []
        for item in batch:
            image, boxes = item["image"], item["boxes"]
            if self.augment:
                image, boxes = _augment(image, boxes)
            images.append(image)
            targets.append({"boxes": boxes.to(device), "labels": item["labels"].to(device)})
        losses = model(torch.stack(images).to(device), targets)
        total = sum(losses.values())
        return total, {k: float(v.detach()) for k, v in losses.items()}

    def validate(self, model, dataset, device):
        result = evaluate_detector(model, dataset, device)
        return {"val_mean_iou": result["mean_iou"], "val_map50": result["map50"]}


def evaluate_detector(model: RegionDetector, dataset, device) -> dict:
    """Mean IoU over the real regions (whole_image excluded) and mAP@0.5."""
    predictions, truths = [], []
    names = list(model.config.region_names)
    for i in range(len(dataset)):
        item = dataset[i]
        detections = model.detect(item["image"][None].to(device))
        boxes, scores = detections.boxes[0].cpu(), detections.scores[0].cpu()
        predictions.append({name: (tuple(boxes[r].tolist()), float(scores[r]))
                            for r, name in enumerate(names) if name != "whole_image"})
        truths.append({item["region_names"][k]: tuple(item["boxes"][k].tolist())
                       for k in range(len(item["region_names"]))})
    result = detector_metrics(predictions, truths)
    return {"mean_iou": float(result["mean_iou"]), "map50": float(result["map50"]),
            "iou_per_region": {k: float(v) for k, v in result["iou"].items() if v is not None}}
