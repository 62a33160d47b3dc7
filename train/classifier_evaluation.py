"""The finding classifier on every labelled test split, beside two baselines, in one run.

- model: the bundle's classifier through the app's own path (read_image -> window ->
  preprocessing -> calibrated study probabilities), so what is measured is what ships.
- prevalence: a constant score at the training prevalence; its AUC is 0.5 on every split
  (it ranks nothing), stated so the model's margin over chance is explicit.
- linear probe: logistic regression per finding on FROZEN ImageNet EfficientNet-Lite
  features (the same backbone before any training), fitted on the training images with the
  same labels and masks; its L2 strength is chosen on validation.
AUCs carry 95% percentile-bootstrap intervals (images resampled). Splits: NIH pooled and by
source (the DarkCovidNet subset, chosen by label, vs the other NIH sources), covid_cxr,
JSRT nodules, the NLM TB sets.
"""
from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np

from rrg_desk.models.findings import FINDING_NAMES
from train.data.finding_labels import LabelledImage, label_arrays, labelled_images
from train.metrics import binary_auc, bootstrap_auc_interval

log = logging.getLogger(__name__)

# the held-out goal's findings (issue 12): mean AUC over these, in the app's names
GOAL_FINDINGS = ("Atelectasis", "Cardiomegaly", "Pleural Effusion", "Lung Opacity", "Lung Lesion", "Pneumonia",
                 "Pneumothorax", "Consolidation", "Edema")
DARKCOVIDNET = "nih:muhammedtalo/COVID-19"


def evaluation_groups(items: list[LabelledImage]) -> dict[str, list[int]]:
    """Split name -> indices: every source family, and NIH by subset."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        family = item.source.split(":")[0]
        groups[family].append(index)
        if family == "nih":
            groups["nih_darkcovidnet" if item.source == DARKCOVIDNET else "nih_other_sources"].append(index)
    return dict(groups)


def auc_table(labels: np.ndarray, mask: np.ndarray, scores: np.ndarray, resamples: int = 1000) -> dict:
    """Per finding {auc, ci95, positives, negatives} (None where one class is missing) and the
    mean over GOAL_FINDINGS that are defined."""
    per_finding = {}
    for k, name in enumerate(FINDING_NAMES):
        rows = mask[:, k].astype(bool)
        truth, score = labels[rows, k], scores[rows, k]
        positives = int(truth.sum())
        auc = binary_auc(truth, score) if 0 < positives < len(truth) else None
        low, high = bootstrap_auc_interval(truth, score, resamples) if auc is not None else (None, None)
        per_finding[name] = {"auc": auc, "ci95": [low, high], "positives": positives,
                             "negatives": int(len(truth) - positives)}
    goal = [per_finding[n]["auc"] for n in GOAL_FINDINGS if per_finding[n]["auc"] is not None]
    return {"per_finding": per_finding, "goal_mean_auc": float(np.mean(goal)) if goal else None,
            "goal_findings_defined": len(goal)}


def model_scores(pipeline, items: list[LabelledImage]) -> np.ndarray:
    """[N, F] calibrated probabilities of the bundle's classifier (and its measurements), one
    study per image, as a draft shows them."""
    from rrg_desk.imaging import read_image

    return np.stack([pipeline.image_probabilities(read_image(item.path)).cpu().numpy() for item in items])


def probe_scores(regression: tuple[np.ndarray, ...], features: np.ndarray) -> np.ndarray:
    """Probabilities of a train.feature_probe.fit_regression fit."""
    from train.feature_probe import regression_logits

    return 1.0 / (1.0 + np.exp(-regression_logits(regression, features)))


def linear_probe(config: dict, train: list, val: list, test: list, device) -> tuple[np.ndarray, dict]:
    """Test scores of the frozen-backbone probe, its L2 strength chosen on validation."""
    from train.tasks.common import spec_of

    model = config["clip"].get("model", {})
    backbone, size = model.get("backbone", "tf_efficientnet_lite0"), int(model.get("image_size", 256))
    from train.feature_probe import fit_regression, new_probe, probe_features

    spec = spec_of(config)
    frozen, _ = new_probe(backbone, size, list(FINDING_NAMES))  # the ImageNet weights, read once
    feats = {name: probe_features(frozen, items, spec, device) for name, items in
             (("train", train), ("val", val), ("test", test))}
    (y_train, m_train), (y_val, m_val) = label_arrays(train), label_arrays(val)
    best = None
    for l2 in (1e-4, 1e-3, 1e-2, 1e-1):
        probe = fit_regression(feats["train"], y_train, m_train, l2)
        val_auc = _mean_masked_auc(y_val, m_val, probe_scores(probe, feats["val"]))
        if best is None or (val_auc or 0) > (best[0] or 0):
            best = (val_auc, l2, probe)
    log.info("linear probe: L2 %.0e chosen on validation (mean AUC %.3f)", best[1], best[0] or float("nan"))
    return probe_scores(best[2], feats["test"]), {"backbone": backbone, "image_size": size, "l2": best[1],
                                                   "val_mean_auc": best[0]}


def _mean_masked_auc(labels, mask, scores) -> float | None:
    aucs = []
    for k in range(labels.shape[1]):
        rows = mask[:, k].astype(bool)
        auc = binary_auc(labels[rows, k], scores[rows, k]) if rows.any() else None
        if auc is not None:
            aucs.append(auc)
    return float(np.mean(aucs)) if aucs else None


def evaluate_classifier(config: dict, pipeline, split: str = "test", probe: bool = True) -> dict:
    """Model vs prevalence vs linear probe on every labelled source's `split`, per group."""
    from train.tasks.clip_task import labelled_sources, spread

    sources = labelled_sources(config)
    test = labelled_images(sources, split)
    limit = int(config.get("evaluate", {}).get("max_studies", 0) or 0)
    if limit:
        test = spread(test, limit)
    labels, mask = label_arrays(test)
    systems = {"model": model_scores(pipeline, test)}
    probe_record = None
    if probe and config["clip"].get("pretrained", False):
        systems["linear_probe"], probe_record = linear_probe(
            config, labelled_images(sources, "train"), labelled_images(sources, "val"), test, pipeline.device)
    result = {"split": split, "images": len(test), "linear_probe": probe_record,
              "prevalence_baseline": "a constant score: AUC 0.5 on every split and finding", "groups": {}}
    for group, rows in evaluation_groups(test).items():
        result["groups"][group] = {"images": len(rows), **{name: auc_table(labels[rows], mask[rows], scores[rows])
                                                           for name, scores in systems.items()}}
    return result


def classifier_table(result: dict) -> str:
    """Markdown: per group and finding, model AUC [CI] beside the probe, positives/negatives."""
    lines = ["| split | finding | pos/neg | model AUC [95% CI] | linear probe AUC [95% CI] |", "|---|---|---|---|---|"]

    def cell(entry):
        if entry is None or entry["auc"] is None:
            return "n/a"
        low, high = entry["ci95"]
        return f"{entry['auc']:.3f} [{low:.2f}, {high:.2f}]" if low is not None else f"{entry['auc']:.3f}"

    for group, record in result["groups"].items():
        for name in FINDING_NAMES:
            model = record["model"]["per_finding"][name]
            if model["auc"] is None:
                continue
            probe = record.get("linear_probe", {}).get("per_finding", {}).get(name)
            lines.append(f"| {group} | {name} | {model['positives']}/{model['negatives']} | {cell(model)} | "
                         f"{cell(probe)} |")
        goal_model = record["model"]["goal_mean_auc"]
        goal_probe = record.get("linear_probe", {}).get("goal_mean_auc")
        lines.append(f"| {group} | **mean of the goal findings defined here** "
                     f"({record['model']['goal_findings_defined']}) | | "
                     f"{'n/a' if goal_model is None else f'{goal_model:.3f}'} | "
                     f"{'n/a' if goal_probe is None else f'{goal_probe:.3f}'} |")
    return "\n".join(lines)


def jsonl_scores(path, items: list[LabelledImage]) -> tuple[np.ndarray, list[int]]:
    """Finding probabilities of `rrg-desk draft --each --jsonl` lines for `items` (matched by
    resolved image path): ([M, F] scores, indices into items of the M drafted ones)."""
    import json
    from pathlib import Path

    by_path = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "error" not in record and record.get("images"):
            probabilities = {f["name"]: f["probability"] for f in record["findings"]}
            by_path[str(Path(record["images"][0]["path"]).resolve())] = [probabilities.get(n, 0.0)
                                                                         for n in FINDING_NAMES]
    found = [k for k, item in enumerate(items) if str(item.path.resolve()) in by_path]
    scores = np.array([by_path[str(items[k].path.resolve())] for k in found]).reshape(-1, len(FINDING_NAMES))
    return scores, found


def score_jsonl(config: dict, path, split: str = "test") -> dict:
    """AUC tables per group for a JSONL of drafts of the labelled `split` images."""
    from train.tasks.clip_task import labelled_sources

    items = labelled_images(labelled_sources(config), split)
    scores, found = jsonl_scores(path, items)
    items = [items[k] for k in found]
    labels, mask = label_arrays(items)
    return {"split": split, "images": len(items), "groups": {
        group: {"images": len(rows), "model": auc_table(labels[rows], mask[rows], scores[rows])}
        for group, rows in evaluation_groups(items).items()}}
