"""Region detector on JSRT: boxes for every region derived from the SCR organ masks, and the
organ masks themselves for the outline head."""
from __future__ import annotations

import logging
import random

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rrg_desk.models.detector import DetectorConfig, RegionDetector, paste_masks
from rrg_desk.models.regions import REGION_NAMES, SCR_ORGANS, WHOLE_IMAGE
from train.data.jsrt import JsrtRegionDataset
from train.metrics import detector_metrics
from train.tasks.common import CachedDataset, limit, spec_of

log = logging.getLogger(__name__)
FROZEN_PREFIXES_DEFAULT = ("conv_stem", "bn1", "blocks.0", "blocks.1")  # pretrained body: ImageNet's edges


def build_detector(config: dict) -> RegionDetector:
    if config.get("tiny"):
        base = DetectorConfig.tiny().to_dict()
    else:
        base = DetectorConfig().to_dict()
    base.update(config["detector"].get("model", {}))
    base["image_size"] = int(config["preprocessing"]["image_size"])
    return RegionDetector(DetectorConfig.from_dict(base))


def trained_detector(config: dict) -> RegionDetector:
    """The detector run's best weights, with its outline refiner when one is trained (raises
    FileNotFoundError before the detector is trained)."""
    from train.export import _weights
    from train.tasks.common import run_dir
    from train.tasks.refiner_task import attach_trained_refiner

    detector = build_detector(config)
    detector.load_state_dict(_weights(run_dir(config, "detector")))
    return attach_trained_refiner(config, detector)


def _augment(image: torch.Tensor, boxes: torch.Tensor, masks: torch.Tensor | None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Contrast/brightness jitter, a small zoom (0.92-1.08) and shift (4%) of image, boxes and
    masks alike. No flips or rotations: left and right differ and radiographs are upright."""
    size = image.shape[-1]
    image = image * random.uniform(0.85, 1.15) + random.uniform(-0.15, 0.15)
    scale = random.uniform(0.92, 1.08)
    dx, dy = (random.uniform(-0.04, 0.04) * size for _ in range(2))
    # output pixel p shows input pixel (p - centre - shift) / scale + centre
    theta = torch.tensor([[[1 / scale, 0.0, -2 * dx / size / scale], [0.0, 1 / scale, -2 * dy / size / scale]]])
    grid = F.affine_grid(theta, (1, 1, size, size), align_corners=False)
    image = F.grid_sample(image[None], grid, padding_mode="border", align_corners=False)[0]
    centre = size / 2
    shift = torch.tensor([dx, dy, dx, dy], dtype=boxes.dtype)
    boxes = ((boxes - centre) * scale + centre + shift).clamp(0, size)
    if masks is not None:
        masks = F.grid_sample(masks[None].float(), grid, mode="nearest", align_corners=False)[0].to(masks.dtype)
    return image, boxes, masks


def jsrt_regions(config: dict, split: str) -> CachedDataset:
    """A JSRT split with the anatomical region boxes (whole_image is the frame, not a class) and
    the SCR organ masks, cached in memory (the config's `limit` images at most)."""
    anatomical = tuple(r for r in REGION_NAMES if r != WHOLE_IMAGE)
    return CachedDataset(JsrtRegionDataset(config["data"]["jsrt"], split, spec_of(config), regions=anatomical),
                         limit(config))


class DetectorTask:
    name = "detector"

    def __init__(self, config: dict) -> None:
        self.config = config
        self.spec = spec_of(config)
        self.train_set, self.val_set = jsrt_regions(config, "train"), jsrt_regions(config, "val")
        self.augment = bool(config["detector"].get("augment", True))
        self.with_masks = bool(config["detector"].get("model", {}).get("mask_regions"))

    def build_model(self) -> nn.Module:
        model = build_detector(self.config)
        model.set_prior_boxes(self.mean_relative_boxes())
        section = self.config["detector"]
        if model.config.backbone != "mobilenet_v3_small" and section.get("pretrained", False):
            self.pretrained_provenance = load_imagenet_body(model)
            frozen = tuple(section.get("frozen_prefixes", FROZEN_PREFIXES_DEFAULT))
            for name, param in model.rcnn.backbone.body.named_parameters():
                if name.startswith(frozen):
                    param.requires_grad = False
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
        priors[REGION_NAMES.index(WHOLE_IMAGE)] = torch.tensor([0.0, 0.0, 1.0, 1.0])
        return priors

    def datasets(self):
        return self.train_set, self.val_set

    def collate(self, batch):
        return batch

    def loss(self, model, batch, device):
        images, targets = [], []
        for item in batch:
            image, boxes, masks = item["image"], item["boxes"], item.get("masks") if self.with_masks else None
            if self.augment:
                image, boxes, masks = _augment(image, boxes, masks)
            images.append(image)
            target = {"boxes": boxes.to(device), "labels": item["labels"].to(device)}
            if masks is not None:
                target["masks"] = masks.to(device)
            targets.append(target)
        losses = model(torch.stack(images).to(device), targets)
        total = sum(losses.values())
        return total, {k: float(v.detach()) for k, v in losses.items()}

    def validate(self, model, dataset, device):
        result = evaluate_detector(model, dataset, device)
        metrics = {"val_mean_iou": result["mean_iou"], "val_map50": result["map50"]}
        if "mean_dice" in result:
            metrics["val_mean_dice"] = result["mean_dice"]
        return metrics


def load_imagenet_body(model: RegionDetector, path=None) -> dict:
    """The pinned ImageNet EfficientNet-Lite weights into the detector's body; returns the provenance."""
    from train.pretrained import load_imagenet_features

    return load_imagenet_features(model.rcnn.backbone.body, model.config.backbone, path)


def evaluate_detector(model: RegionDetector, dataset, device) -> dict:
    """Mean IoU over the real regions (whole_image excluded), mAP@0.5 and, for a detector with
    mask regions on items with masks, the Dice of each outline in the model frame."""
    predictions, truths = [], []
    names = list(model.config.region_names)
    mask_names = list(model.config.mask_regions)
    dice: dict[str, list[float]] = {name: [] for name in mask_names}
    for i in range(len(dataset)):
        item = dataset[i]
        detections = model.detect(item["image"][None].to(device))
        boxes, scores = detections.boxes[0].cpu(), detections.scores[0].cpu()
        predictions.append({name: (tuple(boxes[r].tolist()), float(scores[r]))
                            for r, name in enumerate(names) if name != WHOLE_IMAGE})
        truths.append({item["region_names"][k]: tuple(item["boxes"][k].tolist())
                       for k in range(len(item["region_names"]))})
        if mask_names and "masks" in item:
            height, width = item["image"].shape[-2:]
            pasted = paste_masks(detections.masks[0].cpu(), boxes[model.config.mask_indices], height, width) >= 0.5
            for m, name in enumerate(mask_names):
                truth = item["masks"][SCR_ORGANS.index(name)] > 0
                dice[name].append(dice_score(pasted[m], truth))
    result = detector_metrics(predictions, truths)
    out = {"mean_iou": float(result["mean_iou"]), "map50": float(result["map50"]),
           "iou_per_region": {k: float(v) for k, v in result["iou"].items() if v is not None}}
    if any(dice.values()):
        out["dice_per_region"] = {k: float(np.mean(v)) for k, v in dice.items() if v}
        out["mean_dice"] = float(np.mean(list(out["dice_per_region"].values())))
    return out


def dice_score(predicted: torch.Tensor, truth: torch.Tensor) -> float:
    """2|A n B| / (|A| + |B|) of two boolean masks (1.0 when both are empty)."""
    total = int(predicted.sum()) + int(truth.sum())
    return 1.0 if total == 0 else 2.0 * int((predicted & truth).sum()) / total


def score_regions_jsonl(config: dict, path, split: str = "test") -> dict:
    """Box IoU per region of `rrg-desk draft --each --jsonl` lines for the JSRT `split` images
    (matched by resolved image path), against the boxes derived from their SCR masks, in the
    original pixels the CLI reports. Empty when the file drafts none of them."""
    import json
    from pathlib import Path

    dataset = JsrtRegionDataset(config["data"]["jsrt"], split, spec_of(config))
    wanted = {str((dataset.root / "images" / f"{i}.png").resolve()): i for i in dataset.ids}
    predictions, truths = [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "error" in record or not record.get("images"):
            continue
        image_id = wanted.get(str(Path(record["images"][0]["path"]).resolve()))
        if image_id is None:
            continue
        predictions.append({r["name"]: (tuple(r["box"]), 1.0) for r in record["regions"]
                            if r["name"] != WHOLE_IMAGE and r.get("image", 0) == 0})
        truths.append({name: box for name, box in dataset.region_boxes(image_id).items() if name != WHOLE_IMAGE})
    if not truths:
        return {"split": split, "images": 0}
    result = detector_metrics(predictions, truths)
    organs = [result["iou"][o] for o in SCR_ORGANS if o in result["iou"]]
    return {"split": split, "images": len(truths), "mean_iou": result["mean_iou"], "map50": result["map50"],
            "iou_per_region": result["iou"], "mean_iou_organs": float(np.mean(organs)) if organs else None}
