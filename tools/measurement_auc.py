"""How well the detector's measurements separate findings, on train+val only, nothing fitted.

Runs a bundle's detector on the NIH train+val images outside the DarkCovidNet subset (that subset
was chosen by label and flatters any model) and prints the AUC, with a 95% bootstrap interval, of
each raw measurement (rrg_desk.models.measurements) for the goal findings. Used to decide which
findings the classifier may score from a measurement (docs/training.md): the cardiothoracic ratio
for Cardiomegaly. The test split is never read.

    python tools/measurement_auc.py --bundle resources/models/default
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rrg_desk.models.bundle import load_bundle  # noqa: E402
from rrg_desk.models.findings import FINDING_NAMES  # noqa: E402
from rrg_desk.models.measurements import MEASURES, measure  # noqa: E402
from train.classifier_evaluation import DARKCOVIDNET, GOAL_FINDINGS  # noqa: E402
from train.config import load_config  # noqa: E402
from train.data.finding_labels import label_arrays, labelled_images  # noqa: E402
from train.data.preprocess import load_image_tensor  # noqa: E402
from train.metrics import binary_auc, bootstrap_auc_interval  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="resources/models/default")
    parser.add_argument("--config", default=None)
    args = parser.parse_args()
    config = load_config(args.config)
    items = [i for split in ("train", "val") for i in labelled_images(config["data"]["labelled"], split)
             if i.source.startswith("nih:") and i.source != DARKCOVIDNET]
    labels, mask = label_arrays(items)
    bundle = load_bundle(args.bundle)
    detector = bundle.detector.eval()
    values = {name: np.full(len(items), np.nan) for name in MEASURES}
    with torch.inference_mode():
        for n, item in enumerate(items):
            image = load_image_tensor(item.path, bundle.preprocessing)[0][None]
            for name, value in measure(detector.detect(image).found_boxes(bundle.region_names)).items():
                values[name][n] = value
    print(f"{len(items)} NIH train+val images outside DarkCovidNet; bundle {bundle.bundle_id}")
    for name, column in values.items():
        known = ~np.isnan(column)
        print(f"{name}: measured on {int(known.sum())}")
        for finding in GOAL_FINDINGS:
            k = FINDING_NAMES.index(finding)
            rows = known & (mask[:, k] > 0)
            truth = labels[rows, k]
            if 0 < truth.sum() < len(truth):
                low, high = bootstrap_auc_interval(truth, column[rows], 1000)
                print(f"  {finding}: AUC {binary_auc(truth, column[rows]):.3f} [{low:.2f}, {high:.2f}] "
                      f"({int(truth.sum())} positives / {len(truth)})")


if __name__ == "__main__":
    main()
