"""Does test-time augmentation raise the shipped classifier's AUC? Validation split only.

Scores every labelled validation image with the bundle's classifier as it is and averaged over
zoomed (0.92, 1.08) and shifted (4% each way) copies, then prints the goal-mean AUC per group
(train/classifier_evaluation.py's groups). The test split is never read. Used for the note in
docs/training.md (no gain, so drafts score the image once).

    python tools/classifier_tta_check.py [--bundle resources/models/default]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rrg_desk.imaging import read_image  # noqa: E402
from rrg_desk.inference.pipeline import DraftPipeline  # noqa: E402
from rrg_desk.models.classify import view_probabilities  # noqa: E402
from train.classifier_evaluation import auc_table, evaluation_groups  # noqa: E402
from train.config import load_config  # noqa: E402
from train.data.finding_labels import label_arrays, labelled_images  # noqa: E402
from train.tasks.clip_task import labelled_sources  # noqa: E402


def moved(images: torch.Tensor, zoom: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> torch.Tensor:
    """The images zoomed about their centre and shifted (fractions of half the side), edges repeated."""
    theta = torch.tensor([[1 / zoom, 0.0, dx], [0.0, 1 / zoom, dy]], dtype=images.dtype)
    grid = F.affine_grid(theta[None].expand(len(images), 2, 3), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False)


VIEWS = {"as is": {}, "zoom in": {"zoom": 1.08}, "zoom out": {"zoom": 0.92}, "left": {"dx": 0.04},
         "right": {"dx": -0.04}, "up": {"dy": 0.04}, "down": {"dy": -0.04}}
SYSTEMS = {"plain": ["as is"], "zoom x3": ["as is", "zoom in", "zoom out"],
           "shift x5": ["as is", "left", "right", "up", "down"], "all x7": list(VIEWS)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="resources/models/default")
    parser.add_argument("--config", default="train/configs/default.yaml")
    args = parser.parse_args(argv)
    items = labelled_images(labelled_sources(load_config(args.config)), "val")
    pipeline = DraftPipeline(args.bundle, device="cpu")
    classifier, mode = pipeline.bundle.classifier, pipeline.bundle.card.classification.mode
    prompts = pipeline._prompt_embeddings()
    scores = {name: [] for name in VIEWS}
    with torch.inference_mode():
        for item in items:
            image = pipeline._prepare(read_image(item.path)).tensor
            batch = torch.cat([moved(image, **how) for how in VIEWS.values()])
            for name, row in zip(VIEWS, view_probabilities(classifier, batch, mode, prompts)):
                scores[name].append(row.numpy())
    labels, mask = label_arrays(items)
    per_view = {name: np.stack(rows) for name, rows in scores.items()}
    groups = list(evaluation_groups(items).items()) + [("all", list(range(len(items))))]
    print(f"{len(items)} validation images; goal-mean AUC per group (classification mode {mode})")
    for group, rows in groups:
        cells = []
        for system, views in SYSTEMS.items():
            averaged = sum(per_view[v] for v in views) / len(views)
            auc = auc_table(labels[rows], mask[rows], averaged[rows], resamples=20)["goal_mean_auc"]
            cells.append(f"{system} {auc:.3f}" if auc is not None else f"{system} -")
        print(f"{group} ({len(rows)}): " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
