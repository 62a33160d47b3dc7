"""Region detectors side by side on one JSRT split: per-region box IoU, mAP@0.5 and the organ
outlines' Dice, for each bundle given and for the mean-shape baselines (every image gets the mean
training box of each region, and the mean training mask of each organ thresholded at 0.5).

    python tools/compare_detectors.py runs/bundle_prev resources/models/default --split test \\
        --out runs/detector_comparison.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rrg_desk.models.bundle import load_bundle  # noqa: E402
from rrg_desk.models.card import Preprocessing  # noqa: E402
from rrg_desk.models.regions import REGION_NAMES, SCR_ORGANS, WHOLE_IMAGE  # noqa: E402
from train.config import load_config  # noqa: E402
from train.data.jsrt import JsrtRegionDataset  # noqa: E402
from train.metrics import detector_metrics  # noqa: E402
from train.tasks.detector_task import dice_score, evaluate_detector  # noqa: E402

REGIONS = tuple(r for r in REGION_NAMES if r != WHOLE_IMAGE)


def mean_shape_baseline(root: str, split: str, spec: Preprocessing) -> dict:
    train = JsrtRegionDataset(root, "train", spec, regions=REGIONS)
    boxes: dict[str, list] = {r: [] for r in REGIONS}
    mask_sum = torch.zeros(len(SCR_ORGANS), spec.image_size, spec.image_size)
    for i in range(len(train)):
        item = train[i]
        for name, box in zip(item["region_names"], item["boxes"]):
            boxes[name].append(box.numpy())
        mask_sum += item["masks"].float()
    mean_box = {r: tuple(np.mean(v, axis=0).tolist()) for r, v in boxes.items() if v}
    mean_mask = mask_sum / len(train) >= 0.5
    test = JsrtRegionDataset(root, split, spec, regions=REGIONS)
    truths, dice = [], {o: [] for o in SCR_ORGANS}
    for i in range(len(test)):
        item = test[i]
        truths.append({n: tuple(b.tolist()) for n, b in zip(item["region_names"], item["boxes"])})
        for m, organ in enumerate(SCR_ORGANS):
            dice[organ].append(dice_score(mean_mask[m], item["masks"][m] > 0))
    result = detector_metrics([{r: (b, 1.0) for r, b in mean_box.items()}] * len(truths), truths)
    per_organ = {o: float(np.mean(v)) for o, v in dice.items()}
    return {"mean_iou": result["mean_iou"], "map50": result["map50"], "iou_per_region": result["iou"],
            "dice_per_region": per_organ, "mean_dice": float(np.mean(list(per_organ.values())))}


def evaluate(folder: str, root: str, split: str) -> dict:
    bundle = load_bundle(folder)
    spec = bundle.preprocessing
    dataset = JsrtRegionDataset(root, split, spec, regions=REGIONS)
    with torch.inference_mode():
        return evaluate_detector(bundle.detector, dataset, "cpu")


def table(results: dict[str, dict]) -> str:
    names = list(results)
    lines = ["| region | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for region in REGIONS:
        cells = []
        for name in names:
            iou = results[name]["iou_per_region"].get(region)
            dice = results[name].get("dice_per_region", {}).get(region)
            cells.append(("n/a" if iou is None else f"{iou:.3f}") + ("" if dice is None else f" / {dice:.3f}"))
        lines.append(f"| {region} | " + " | ".join(cells) + " |")
    for key in ("mean_iou", "map50", "mean_dice"):
        lines.append(f"| **{key}** | " + " | ".join(
            f"{results[n][key]:.3f}" if results[n].get(key) is not None else "n/a" for n in names) + " |")
    organs = {n: float(np.mean([results[n]["iou_per_region"][o] for o in SCR_ORGANS])) for n in names}
    lines.append("| **mean IoU, 5 organs** | " + " | ".join(f"{organs[n]:.3f}" for n in names) + " |")
    return "\n".join(lines) + "\n\ncells: box IoU / outline Dice"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--config", default="train/configs/default.yaml")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    config = load_config(args.config)
    root = config["data"]["jsrt"]
    results = {folder: evaluate(folder, root, args.split) for folder in args.bundles}
    spec = load_bundle(args.bundles[-1]).preprocessing
    results["mean_shape_baseline"] = mean_shape_baseline(root, args.split, spec)
    text = table(results)
    print(text)
    if args.out:
        args.out.write_text(json.dumps({"split": args.split, "results": results}, indent=1))


if __name__ == "__main__":
    main()
