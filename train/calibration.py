"""After the classifier is trained: choose how it classifies, calibrate it, set thresholds,
and fit its input gate (train/input_gate.py).

All three are chosen on the VALIDATION images (never on a test split) and written to
<out_dir>/clip/classification.json, which the generator's clue cache and the export read,
so the generator learns from exactly the probabilities the app will show.
- mode: "auto" picks the mode (head, zero_shot, ensemble) with the best mean validation AUC.
- calibration: Platt scaling per finding (sigmoid(scale * logit(p) + bias)), fitted by
  penalised likelihood on the labelled validation images; findings with fewer than
  MIN_CASES positives or negatives keep the identity.
- thresholds: per finding on the calibrated probabilities, F1-optimal ("f1") or Youden's J
  ("youden"), only where the classifier shows skill on validation (AUC >= MIN_AUC with
  MIN_CASES positives and negatives); elsewhere UNASSESSED (1.0): a finding the classifier
  has not shown it can separate (no labels, one class only, or chance-level AUC) is never
  asserted, whatever its raw score. A cut chosen on a handful of positives fits those cases,
  not the finding (pneumothorax at p >= 0.06 was asserted on a COVID-19 pneumonia): with
  fewer than MIN_THRESHOLD_POSITIVES validation positives the threshold is the calibrated
  probability 0.5 (more likely present than not) unless the rule's cut is higher.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from rrg_desk.models.card import DEFAULT_CLASSIFICATION_MODE
from rrg_desk.thresholds import DEFAULT_THRESHOLD
from train.classifier_evaluation import DARKCOVIDNET
from train.metrics import binary_auc, within_source_mean_auc

log = logging.getLogger(__name__)

MIN_CASES = 3
MIN_AUC = 0.6
MIN_THRESHOLD_POSITIVES = 10
UNASSESSED = 1.0  # the threshold of a finding without validated skill: the app never asserts it
THRESHOLD_RULES = ("f1", "youden")
# Findings the detector's boxes can measure (rrg_desk.models.measurements), chosen on train+val
# NIH patients outside DarkCovidNet with nothing fitted (tools/measurement_auc.py: the
# cardiothoracic ratio separates Cardiomegaly at AUC 0.91 where image features give 0.56). The
# logistic map is fitted on NIH training images outside DarkCovidNet (picked by label, so its
# cardiomegaly prevalence is not the clinic's). Validation can overrule the choice only with at
# least MIN_THRESHOLD_POSITIVES positives: on fewer, one image decides (the shipped run has 4).
MEASURED_FINDINGS = {"Cardiomegaly": "cardiothoracic_ratio"}


def fit_platt(probabilities: np.ndarray, labels: np.ndarray, penalty: float = 1.0, steps: int = 300
              ) -> tuple[float, float]:
    """(scale, bias) minimising the BCE of sigmoid(scale * logit(p) + bias), with an L2 pull
    towards the identity (1, 0) so a handful of cases cannot produce an extreme map."""
    logits = torch.logit(torch.as_tensor(probabilities, dtype=torch.float64).clamp(1e-6, 1 - 1e-6))
    targets = torch.as_tensor(labels, dtype=torch.float64)
    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([params], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        z = params[0] * logits + params[1]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, targets, reduction="sum")
        loss = loss + penalty * ((params[0] - 1.0) ** 2 + params[1] ** 2)
        loss.backward()
        return loss

    optimizer.step(closure)
    scale, bias = (float(v) for v in params.detach())
    return scale, bias


def apply_platt(probabilities: np.ndarray, scale: float, bias: float) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-6, 1 - 1e-6)
    return 1.0 / (1.0 + np.exp(-(scale * np.log(p / (1 - p)) + bias)))


def choose_threshold(probabilities: np.ndarray, labels: np.ndarray, rule: str = "f1") -> float:
    """The cut (a value of `probabilities`) that maximises F1 or Youden's J = TPR - FPR."""
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"threshold rule must be one of {THRESHOLD_RULES}, got {rule!r}")
    truth = np.asarray(labels).astype(bool)
    best, best_value = DEFAULT_THRESHOLD, -np.inf
    for cut in np.unique(probabilities):
        predicted = probabilities >= cut
        tp = float((truth & predicted).sum())
        if rule == "f1":
            value = 2 * tp / max(1.0, float(truth.sum() + predicted.sum()))
        else:
            value = tp / max(1, truth.sum()) - float((~truth & predicted).sum()) / max(1, (~truth).sum())
        if value > best_value:
            best, best_value = float(cut), value
    return best


def _threshold(probabilities: np.ndarray, labels: np.ndarray, rule: str) -> float:
    """The rule's cut, or at least DEFAULT_THRESHOLD (even odds) where validation has too few
    positives to place a cut."""
    cut = choose_threshold(probabilities, labels, rule)
    return cut if int(np.sum(labels)) >= MIN_THRESHOLD_POSITIVES else max(cut, DEFAULT_THRESHOLD)


def _rule_used(validated: bool, positives: int, rule: str) -> str:
    if not validated:
        return "unassessed"
    return rule if positives >= MIN_THRESHOLD_POSITIVES else f"max({rule}, {DEFAULT_THRESHOLD})"


def _mean_auc(probs: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> float | None:
    aucs = []
    for k in range(labels.shape[1]):
        rows = mask[:, k].astype(bool)
        positives = int(labels[rows, k].sum())
        if min(positives, int(rows.sum()) - positives) >= MIN_CASES:
            aucs.append(binary_auc(labels[rows, k], probs[rows, k]))
    return float(np.mean(aucs)) if aucs else None


def select_classification(scores: dict[str, np.ndarray], labels: np.ndarray, mask: np.ndarray, names: list[str],
                          mode: str = "auto", rule: str = "f1", sources: list[str] | None = None) -> dict:
    """{mode, calibration, thresholds, validation} from validation scores {mode: [N, F]}; the
    mode by the mean AUC within each source when `sources` are given, else pooled."""
    if sources is not None:
        by_mode = {m: within_source_mean_auc(labels, mask, p, sources) for m, p in scores.items()}
    else:
        by_mode = {m: _mean_auc(p, labels, mask) for m, p in scores.items()}
    if mode == "auto":
        mode = max((m for m in by_mode if by_mode[m] is not None), key=lambda m: by_mode[m], default="head"
                   if "head" in scores else "zero_shot")
    if mode not in scores:
        raise ValueError(f"classification mode {mode!r} has no validation scores (have {sorted(scores)})")
    probs = scores[mode]
    calibration, thresholds, record = {}, {}, {}
    for k, name in enumerate(names):
        rows = mask[:, k].astype(bool)
        truth, p = labels[rows, k], probs[rows, k]
        positives, negatives = int(truth.sum()), int(len(truth) - truth.sum())
        enough = min(positives, negatives) >= MIN_CASES
        auc = binary_auc(truth, p) if min(positives, negatives) > 0 else None
        if enough:
            scale, bias = fit_platt(p, truth)
            calibration[name] = {"scale": round(scale, 6), "bias": round(bias, 6)}
            p = apply_platt(p, scale, bias)
        validated = enough and auc is not None and auc >= MIN_AUC
        thresholds[name] = round(_threshold(p, truth, rule), 6) if validated else UNASSESSED
        record[name] = {"val_auc": auc, "val_positives": positives, "val_negatives": negatives,
                        "validated": validated, "threshold": thresholds[name], "calibrated": name in calibration,
                        "threshold_rule": _rule_used(validated, positives, rule)}
    return {"mode": mode, "calibration": calibration, "thresholds": thresholds,
            "validation": {"mean_auc_by_mode": by_mode, "threshold_rule": rule, "per_finding": record}}


def fit_measurement(values: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(scale, bias) of the logistic regression of 0/1 `labels` on a measurement's `values`:
    P(finding) = sigmoid(scale * value + bias). Fitted on standardised values (Platt's fit with
    a negligible pull), then mapped back."""
    mean, std = float(values.mean()), float(values.std()) or 1.0
    standard = 1.0 / (1.0 + np.exp(-(values - mean) / std))  # logit() of these = the standardised values
    a, b = fit_platt(standard, labels, penalty=0.01)
    return a / std, b - a * mean / std


def _trained_detector(config: dict, device):
    """The detector run's best weights, or None before the detector is trained (the classifier
    can be trained first; its measured findings are then left to the image classifier)."""
    from train.tasks.detector_task import trained_detector

    try:
        detector = trained_detector(config)
    except FileNotFoundError:
        return None
    return detector.to(device).eval()


def _measure_items(detector, items, spec, device) -> list[dict[str, float]]:
    """The app's measurements of each image (rrg_desk.models.measurements) by `detector`."""
    from rrg_desk.models.measurements import measure
    from train.data.preprocess import load_image_tensor

    out = []
    with torch.inference_mode():
        for item in items:
            image = load_image_tensor(item.path, spec)[0][None].to(device)
            out.append(measure(detector.detect(image).found_boxes(detector.config.region_names)))
    return out


def fit_measured_findings(config: dict, train_items, val_items, scores: dict[str, np.ndarray], names: list[str],
                          device) -> tuple[dict, dict]:
    """For each finding in MEASURED_FINDINGS: fit its measurement's logistic map on the labelled NIH
    training images outside DarkCovidNet, score the validation images by it, and keep it (its
    column replacing the image classifier's in every mode of `scores`, in place) unless validation
    has MIN_THRESHOLD_POSITIVES positives and a mode beats it there. Returns (card entries, record)."""
    from train.tasks.common import spec_of

    detector = _trained_detector(config, device)
    if detector is None:
        log.warning("no trained detector yet: %s left to the image classifier", sorted(MEASURED_FINDINGS))
        return {}, {finding: {"measure": name, "kept": False, "why": "no trained detector"}
                    for finding, name in MEASURED_FINDINGS.items()}
    spec = spec_of(config)
    fits, record = {}, {}
    for finding, measure_name in MEASURED_FINDINGS.items():
        k = names.index(finding)
        fit_rows = [i for i in train_items if i.mask[k] > 0 and i.source.startswith("nih:") and i.source != DARKCOVIDNET]
        val_rows = [n for n, i in enumerate(val_items) if i.mask[k] > 0]
        fit_values = _measure_items(detector, fit_rows, spec, device)
        known = [(v[measure_name], i.labels[k]) for v, i in zip(fit_values, fit_rows) if measure_name in v]
        values, labels = np.array([v for v, _ in known]), np.array([y for _, y in known])
        if min(labels.sum(), len(labels) - labels.sum()) < MIN_CASES:
            record[finding] = {"measure": measure_name, "kept": False, "why": "too few training cases"}
            continue
        scale, bias = fit_measurement(values, labels)
        val_values = _measure_items(detector, [val_items[n] for n in val_rows], spec, device)
        measured = np.array([np.nan if measure_name not in v else 1.0 / (1.0 + np.exp(-(scale * v[measure_name] + bias)))
                             for v in val_values])
        truth = np.array([val_items[n].labels[k] for n in val_rows])
        image_aucs = {m: binary_auc(truth, p[val_rows, k]) for m, p in scores.items()} if 0 < truth.sum() < len(truth) else {}
        usable = ~np.isnan(measured)
        measured_auc = binary_auc(truth[usable], measured[usable]) if 0 < truth[usable].sum() < usable.sum() else None
        decisive = int(truth.sum()) >= MIN_THRESHOLD_POSITIVES
        kept = not decisive or (measured_auc is not None and measured_auc >= max(image_aucs.values(), default=0.0))
        record[finding] = {"measure": measure_name, "scale": scale, "bias": bias, "kept": kept,
                           "fit_images": len(known), "fit_positives": int(labels.sum()),
                           "val_auc_measured": measured_auc, "val_auc_image_by_mode": image_aucs,
                           "val_images_measured": int(usable.sum()), "val_images": len(val_rows),
                           "val_positives": int(truth.sum()), "validation_decides": decisive}
        log.info("%s from the %s: validation AUC %s vs the image classifier %s on %d positives -> %s", finding,
                 measure_name, measured_auc, image_aucs, int(truth.sum()),
                 ("kept" if kept else "not used") + ("" if decisive else " (too few positives for validation to decide)"))
        if kept:
            fits[finding] = {"measure": measure_name, "scale": round(scale, 6), "bias": round(bias, 6)}
            rows = np.array(val_rows)[usable]
            for probs in scores.values():
                probs[rows, k] = measured[usable]
    return fits, record


def _fit_probe_into(config: dict, task, scores: dict[str, np.ndarray], names: list[str], device
                    ) -> tuple[float, dict]:
    """Fit the feature probe (train/feature_probe.py) and, where validation keeps it, mix it into
    every mode's validation scores in place, so calibration and thresholds see what the app shows.
    Returns (its weight, 0 without a probe; the record for classification.json)."""
    from rrg_desk.models.feature_probe import mix_logits
    from train.feature_probe import fit_feature_probe, probe_weights_path, save_probe

    probe, val_logits, record = fit_feature_probe(config, task.train_set.items, task.val_set.items,
                                                  scores.get("head", next(iter(scores.values()))), names, device)
    probe_weights_path(config).unlink(missing_ok=True)
    if probe is None:
        return 0.0, record
    save_probe(config, probe)
    logits = torch.as_tensor(val_logits, dtype=torch.float64)
    for mode, probs in scores.items():
        scores[mode] = mix_logits(torch.as_tensor(probs, dtype=torch.float64), logits, record["weight"]).numpy()
    return float(record["weight"]), record | {"config": probe.config.to_dict()}


def _blend_abnormality_into(config: dict, scores: dict[str, np.ndarray], labels: np.ndarray, mask: np.ndarray,
                            names: list[str], sources: list[str]) -> tuple[float, dict]:
    """Blend "not normal" into every mode's validation scores in place, so calibration and
    thresholds see what the app shows. The weight is the config's clip.abnormality_weight,
    chosen by tools/finetune_heldout_cv.py rather than on this validation split (mostly the
    DarkCovidNet subset). Returns (the weight, within-source mean AUC by mode before and after)."""
    from rrg_desk.models.classify import blend_abnormality

    weight = float(config["clip"].get("abnormality_weight", 0.0) or 0.0)
    record = {"weight": weight, "within_source_mean_auc_before": {}, "within_source_mean_auc_after": {}}
    for mode, probs in scores.items():
        record["within_source_mean_auc_before"][mode] = within_source_mean_auc(labels, mask, probs, sources)
        scores[mode] = blend_abnormality(torch.as_tensor(probs, dtype=torch.float64), names, weight).numpy()
        record["within_source_mean_auc_after"][mode] = within_source_mean_auc(labels, mask, scores[mode], sources)
    return weight, record


def classification_path(config: dict) -> Path:
    return Path(config["out_dir"]) / "clip" / "classification.json"


def gate_weights_path(config: dict) -> Path:
    return Path(config["out_dir"]) / "clip" / "input_gate.safetensors"


def load_classification(config: dict) -> dict:
    """The chosen mode + calibration + thresholds, or the config's mode when not yet calibrated."""
    path = classification_path(config)
    if path.exists():
        return json.loads(path.read_text())
    mode = config["clip"].get("classification_mode", "auto")
    return {"mode": DEFAULT_CLASSIFICATION_MODE if mode == "auto" else mode, "calibration": {}, "thresholds": {}}


def calibrate_trained_classifier(config: dict, device) -> dict:
    """Load the trained classifier run, score the validation images, select and write."""
    from rrg_desk.models.classify import prompt_token_ids
    from train.export import _strip, _weights
    from train.tasks.clip_task import ClipTask, build_classifier, validation_scores
    from train.tasks.common import run_dir

    task = ClipTask(config)
    classifier = build_classifier(config, task.tokenizer)
    classifier.load_state_dict(_strip(_weights(run_dir(config, "clip")), "classifier."))
    classifier.to(device).eval()
    with torch.no_grad():
        prompts = classifier.prompt_embeddings(*prompt_token_ids(classifier, task.tokenizer, device))
        scores = validation_scores(classifier, task.val_set, prompts, device)
    labels = np.stack([np.asarray(i.labels) for i in task.val_set.items])
    mask = np.stack([np.asarray(i.mask) for i in task.val_set.items])
    from train.data.finding_labels import source_family

    names = list(classifier.config.finding_names)
    probe_weight, probe_record = _fit_probe_into(config, task, scores, names, device)
    sources = [source_family(i) for i in task.val_set.items]
    abnormality_weight, abnormality_record = _blend_abnormality_into(config, scores, labels, mask, names, sources)
    measurements, measurement_record = fit_measured_findings(config, task.train_set.items, task.val_set.items,
                                                             scores, names, device)
    result = select_classification(scores, labels, mask, list(classifier.config.finding_names),
                                   config["clip"].get("classification_mode", "auto"),
                                   config["clip"].get("threshold_rule", "f1"), sources)
    from safetensors.torch import save_file

    from train.input_gate import fit_input_gate

    result["measurements"] = measurements
    result["probe_weight"] = probe_weight
    result["abnormality_weight"] = abnormality_weight
    result["validation"]["abnormality_blend"] = abnormality_record
    result["feature_probe"] = probe_record
    result["validation"]["measurements"] = measurement_record
    result["input_gate"] = fit_input_gate(config, classifier, device)
    save_file({k: v.detach().cpu().contiguous() for k, v in classifier.input_gate.state_dict().items()},
              str(gate_weights_path(config)))
    provenance = run_dir(config, "clip") / "pretrained.json"
    if provenance.exists():
        result["pretrained"] = json.loads(provenance.read_text())
    path = classification_path(config)
    path.write_text(json.dumps(result, indent=1))
    log.info("classification: mode %s (validation mean AUC by mode %s) -> %s", result["mode"],
             result["validation"]["mean_auc_by_mode"], path)
    return result
