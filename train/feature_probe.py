"""Fit the classifier's feature probe (rrg_desk.models.feature_probe) and choose its weight.

After the classifier is trained, on its VALIDATION images only (never a test split):
1. pooled features of the ImageNet EfficientNet-Lite (never trained on radiographs) at
   `image_size` for the training and validation images;
2. per-finding logistic regression on the training images (their labels and masks), its L2
   strength the one with the best mean AUC within each validation source;
3. the probe's share of the logits, from `weights` (0 = no probe), the one whose mix with the
   classifier's head scores has the best mean AUC within each validation source.
Config `clip.feature_probe` (absent or null: no probe):
  {image_size: 384, weights: [0, 0.25, 0.5, 0.75], l2: [0.01, 0.1, 1, 10, 100], imagenet: true}
`imagenet: false` starts the backbone at random: only for the tiny test config.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from rrg_desk.models.feature_probe import FeatureProbe, FeatureProbeConfig, mix_logits
from train.data.finding_labels import label_arrays, source_family
from train.metrics import within_source_mean_auc

log = logging.getLogger(__name__)

DEFAULTS = {"image_size": 384, "weights": [0.0, 0.25, 0.5, 0.75], "l2": [0.01, 0.1, 1.0, 10.0, 100.0],
            "imagenet": True}


def probe_settings(config: dict) -> dict | None:
    settings = config["clip"].get("feature_probe")
    return None if not settings else DEFAULTS | dict(settings)


def probe_weights_path(config: dict) -> Path:
    return Path(config["out_dir"]) / "clip" / "feature_probe.safetensors"


def new_probe(backbone: str, image_size: int, finding_names: list[str], imagenet: bool = True
              ) -> tuple[FeatureProbe, dict | None]:
    """A probe whose backbone holds the ImageNet weights (and their provenance), head untrained."""
    probe = FeatureProbe(FeatureProbeConfig(backbone=backbone, image_size=image_size, finding_names=finding_names))
    provenance = None
    if imagenet:
        from train.pretrained import load_imagenet_backbone

        provenance = load_imagenet_backbone(probe.backbone, backbone)
    return probe.eval(), provenance


def probe_features(probe: FeatureProbe, items: list, spec, device, batch_size: int = 32) -> np.ndarray:
    """[N, C] pooled backbone features of `items` (LabelledImage) on the app's preprocessing."""
    from train.data.preprocess import load_image_tensor

    probe.to(device).eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            batch = torch.stack([load_image_tensor(i.path, spec)[0] for i in items[start:start + batch_size]])
            out.append(probe.features(batch.to(device)).cpu())
    return torch.cat(out).numpy()


def fit_regression(features: np.ndarray, labels: np.ndarray, mask: np.ndarray, l2: float
                   ) -> tuple[np.ndarray, ...]:
    """Per-finding logistic regression on standardised features (masked rows weighted by the
    mask): (mean, std, weights [C, F], bias [F])."""
    mean, std = features.mean(0), features.std(0) + 1e-6
    x = torch.as_tensor((features - mean) / std, dtype=torch.float64)
    y, m = torch.as_tensor(labels, dtype=torch.float64), torch.as_tensor(mask, dtype=torch.float64)
    weights = torch.zeros(x.shape[1], y.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(y.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights, bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ weights + bias, y, reduction="none")
        loss = (loss * m).sum(0) / m.sum(0).clamp(min=1)
        total = loss.sum() + l2 * (weights ** 2).sum()
        total.backward()
        return total

    optimizer.step(closure)
    return mean, std, weights.detach().numpy(), bias.detach().numpy()


def regression_logits(regression: tuple[np.ndarray, ...], features: np.ndarray) -> np.ndarray:
    mean, std, weights, bias = regression
    return ((features - mean) / std) @ weights + bias


def fit_feature_probe(config: dict, train_items: list, val_items: list, head_scores: np.ndarray,
                      finding_names: list[str], device) -> tuple[FeatureProbe | None, np.ndarray | None, dict]:
    """(the fitted probe or None, its validation logits [N, F] or None, the record for the card)."""
    from train.tasks.common import spec_of

    settings = probe_settings(config)
    if settings is None:
        return None, None, {"used": False, "why": "clip.feature_probe is not set"}
    backbone = config["clip"].get("model", {}).get("backbone", "tf_efficientnet_lite0")
    probe, provenance = new_probe(backbone, int(settings["image_size"]), finding_names, bool(settings["imagenet"]))
    spec = spec_of(config)
    train_x, val_x = (probe_features(probe, items, spec, device) for items in (train_items, val_items))
    (train_y, train_m), (val_y, val_m) = label_arrays(train_items), label_arrays(val_items)
    sources = [source_family(i) for i in val_items]

    def within(scores):
        return within_source_mean_auc(val_y, val_m, scores, sources) or 0.0

    by_l2 = {float(l2): fit_regression(train_x, train_y, train_m, float(l2)) for l2 in settings["l2"]}
    auc_by_l2 = {l2: within(regression_logits(r, val_x)) for l2, r in by_l2.items()}
    l2 = max(auc_by_l2, key=auc_by_l2.get)
    val_logits = regression_logits(by_l2[l2], val_x)
    head = torch.as_tensor(head_scores, dtype=torch.float64)
    auc_by_weight = {float(w): within(mix_logits(head, torch.as_tensor(val_logits), float(w)).numpy())
                     for w in settings["weights"]}
    weight = max(auc_by_weight, key=auc_by_weight.get)  # ties: the first listed (0 = no probe first)
    record = {"used": weight > 0, "backbone": backbone, "image_size": int(settings["image_size"]), "l2": l2,
              "weight": weight, "val_within_source_auc_by_l2": auc_by_l2,
              "val_within_source_auc_by_weight": auc_by_weight, "initial_weights": provenance}
    log.info("feature probe: L2 %g, weight %.2f chosen on validation (within-source mean AUC by weight %s)",
             l2, weight, {k: round(v, 3) for k, v in auc_by_weight.items()})
    if weight <= 0:
        return None, None, record
    probe.set_regression(*(torch.as_tensor(a, dtype=torch.float32) for a in by_l2[l2]))
    return probe.cpu(), val_logits, record


def save_probe(config: dict, probe: FeatureProbe) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in probe.state_dict().items()},
              str(probe_weights_path(config)))


def load_probe(config: dict, classification: dict) -> FeatureProbe | None:
    """The probe calibration fitted (classification.json's feature_probe), or None."""
    record = classification.get("feature_probe") or {}
    if not record.get("used"):
        return None
    probe = FeatureProbe(FeatureProbeConfig.from_dict(record["config"]))
    probe.load_state_dict(load_file(str(probe_weights_path(config))))
    return probe.eval()
