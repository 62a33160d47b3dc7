"""How a recipe might do on NIH patients outside the DarkCovidNet subset, using train+val only.

A linear probe on FROZEN ImageNet EfficientNet-Lite features (cheap: features computed once)
is scored by patient-grouped 5-fold cross-validation on the train+val NIH images that do not
come from DarkCovidNet (that subset was chosen by label and flatters any model); every fold
also trains on all other training images. Options compare image sizes and how much weight the
DarkCovidNet images get. The test split is never read. Used to choose the classifier recipe
(docs/training.md); the numbers are noisy (192 images, 2-29 positives per finding).

    python tools/probe_heldout_cv.py --sizes 256 384 --dark-weights 1 0.3 0.1 0
"""
from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rrg_desk.models.findings import FINDING_NAMES  # noqa: E402
from train.classifier_evaluation import DARKCOVIDNET, GOAL_FINDINGS, probe_scores  # noqa: E402
from train.feature_probe import fit_regression, new_probe, probe_features  # noqa: E402
from train.config import load_config  # noqa: E402
from train.data.finding_labels import label_arrays, labelled_images  # noqa: E402
from train.metrics import binary_auc  # noqa: E402
from train.tasks.common import spec_of  # noqa: E402


def goal_aucs(labels, mask, scores, rows) -> dict[str, float]:
    out = {}
    for name in GOAL_FINDINGS:
        k = FINDING_NAMES.index(name)
        chosen = rows & (mask[:, k] > 0)
        truth = labels[chosen, k]
        if 0 < truth.sum() < len(truth):
            out[name] = binary_auc(truth, scores[chosen, k])
    return out


def cross_validate(features, labels, mask, weights, always, target, folds, l2) -> dict[str, float]:
    scores = np.zeros_like(labels)
    for fold in range(5):
        train = always | (target & (folds != fold))
        probe = fit_regression(features[train], labels[train], (mask * weights[:, None])[train], l2)
        held = target & (folds == fold)
        scores[held] = probe_scores(probe, features[held])
    return goal_aucs(labels, mask, scores, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None)
    parser.add_argument("--backbone", default="tf_efficientnet_lite0")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256])
    parser.add_argument("--dark-weights", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--l2", type=float, nargs="+", default=[0.01, 0.1])
    args = parser.parse_args()
    config = load_config(args.config)
    items = labelled_images(config["data"]["labelled"], "train") + labelled_images(config["data"]["labelled"], "val")
    labels, mask = label_arrays(items)
    dark = np.array([i.source == DARKCOVIDNET for i in items])
    other_nih = np.array([i.source.startswith("nih:") for i in items]) & ~dark
    target = other_nih  # train+val NIH outside DarkCovidNet: the held-out folds
    always = ~other_nih & np.array([i.split == "train" for i in items])
    folds = np.array([zlib.crc32(i.patient.encode()) % 5 for i in items])
    print(f"held-out images: {int(target.sum())} (5 folds by patient); always trained on: {int(always.sum())}")
    for size in args.sizes:
        frozen, _ = new_probe(args.backbone, size, list(FINDING_NAMES))
        features = probe_features(frozen, items, spec_of(config), torch.device("cpu"))
        for dark_weight in args.dark_weights:
            weights = np.where(dark, dark_weight, 1.0)
            for l2 in args.l2:
                aucs = cross_validate(features, labels, mask, weights, always, target, folds, l2)
                print(f"{args.backbone}@{size} DarkCovidNet weight {dark_weight:g} L2 {l2:g}: "
                      f"mean {np.mean(list(aucs.values())):.3f} over {len(aucs)} | "
                      + " ".join(f"{k}={v:.2f}" for k, v in aucs.items()), flush=True)


if __name__ == "__main__":
    main()
