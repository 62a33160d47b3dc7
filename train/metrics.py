"""Evaluation metrics: NLG (pycocoevalcap scorers), clinical efficacy, detection, AUC.

NLG scores use pycocoevalcap's individual scorers as R2Gen does (never COCOEvalCap, which
also runs SPICE and downloads Stanford CoreNLP). METEOR starts a Java process (~12 s);
it runs once per call and is closed afterwards; without Java it is skipped (None).
"""
from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from typing import Union

import numpy as np

from rrg_desk.models.findings import FINDING_NAMES
from rrg_desk.reports.labeler import LabelValue, label_report, to_binary

logger = logging.getLogger(__name__)

Box = Sequence[float]  # x_min, y_min, x_max, y_max
Labels = Union[str, Mapping[str, LabelValue]]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _meteor_score(gts: dict, res: dict) -> float | None:
    if shutil.which("java") is None:
        logger.warning("METEOR skipped: no `java` on PATH (install a Java runtime to compute it)")
        return None
    from pycocoevalcap.meteor.meteor import Meteor

    meteor = Meteor()
    try:
        score, _ = meteor.compute_score(gts, res)
    finally:  # Meteor closes only in __del__ (then a no-op); close now so no JVM outlives the call
        with meteor.lock:
            meteor.meteor_p.stdin.close()
            meteor.meteor_p.kill()
            meteor.meteor_p.wait()
            meteor.meteor_p.stdout.close()
            meteor.meteor_p.stderr.close()
    return float(score)


def nlg_metrics(references: Mapping[str, str], hypotheses: Mapping[str, str],
                with_meteor: bool = True) -> dict[str, float | None]:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr of hypotheses against one reference each.

    Keys of both mappings must match. Texts are put on one line (newlines and runs of
    white space collapsed) and otherwise scored as given: clean them first (R2Gen cleans
    with `clean_report_r2gen`). Values are plain floats (JSON-ready); METEOR is None when
    Java is absent or `with_meteor` is False.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if set(references) != set(hypotheses):
        raise ValueError("references and hypotheses must have the same ids")
    if not references:
        raise ValueError("no reports to score")
    ids = sorted(references)
    gts = {i: [_one_line(references[i])] for i in ids}
    res = {i: [_one_line(hypotheses[i])] for i in ids}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    metrics: dict[str, float | None] = {f"BLEU-{n + 1}": float(bleu[n]) for n in range(4)}
    metrics["METEOR"] = _meteor_score(gts, res) if with_meteor else None
    metrics["ROUGE-L"] = float(rouge)
    metrics["CIDEr"] = float(cider)
    return metrics


def _binary_matrix(reports: Sequence[Labels]) -> np.ndarray:
    rows = []
    for report in reports:
        labels = label_report(report) if isinstance(report, str) else report
        binary = to_binary(labels)
        rows.append([binary[name] for name in FINDING_NAMES])
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), len(FINDING_NAMES))


def _prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def ce_metrics(ref_labels: Sequence[Labels], hyp_labels: Sequence[Labels]) -> dict:
    """Clinical efficacy over the 14 CheXpert findings, R2Gen's convention.

    Each item is a report text (labelled with the labeler) or a label dict. Labels are
    binarised (positive -> 1; negative, uncertain, blank -> 0). Micro: pooled counts over
    all findings; macro: mean of per-finding scores (0 where undefined, like sklearn's
    zero_division=0). Returns micro_*/macro_* precision, recall, f1 and `per_finding`.
    """
    if len(ref_labels) != len(hyp_labels):
        raise ValueError("ref_labels and hyp_labels differ in length")
    truth, pred = _binary_matrix(ref_labels), _binary_matrix(hyp_labels)
    tp = (truth & pred).sum(axis=0)
    fp = ((1 - truth) & pred).sum(axis=0)
    fn = (truth & (1 - pred)).sum(axis=0)
    per_finding = {}
    for k, name in enumerate(FINDING_NAMES):
        p, r, f = _prf(float(tp[k]), float(fp[k]), float(fn[k]))
        per_finding[name] = {"precision": p, "recall": r, "f1": f, "support": int(truth[:, k].sum())}
    micro = _prf(float(tp.sum()), float(fp.sum()), float(fn.sum()))
    result = {f"micro_{key}": value for key, value in zip(("precision", "recall", "f1"), micro)}
    for key in ("precision", "recall", "f1"):
        result[f"macro_{key}"] = float(np.mean([per_finding[n][key] for n in FINDING_NAMES]))
    result["per_finding"] = per_finding
    return result


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x_min, y_min, x_max, y_max) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _as_scored(pred) -> list[tuple[Box, float]]:
    """A prediction for one region: a box, a (box, score) pair, or a list of pairs."""
    if pred is None:
        return []
    if len(pred) == 4 and all(isinstance(v, (int, float, np.floating, np.integer)) for v in pred):
        return [(pred, 1.0)]
    if len(pred) == 2 and len(pred[0]) == 4 and not hasattr(pred[1], "__len__"):
        return [(pred[0], float(pred[1]))]
    return [(box, float(score)) for box, score in pred]


def _average_precision(scored_hits: list[tuple[float, bool]], n_truth: int) -> float:
    """All-point interpolated AP (PASCAL VOC 2010+, as in COCO-style mAP@0.5)."""
    if n_truth == 0:
        return float("nan")
    scored_hits.sort(key=lambda sh: -sh[0])
    hits = np.array([hit for _, hit in scored_hits], dtype=float)
    if hits.size == 0:
        return 0.0
    tp, fp = np.cumsum(hits), np.cumsum(1 - hits)
    recall = np.concatenate([[0.0], tp / n_truth, [1.0]])
    precision = np.concatenate([[1.0], tp / np.maximum(tp + fp, 1e-12), [0.0]])
    precision[-1] = 0.0
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    steps = np.where(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def detector_metrics(pred_boxes: Sequence[Mapping[str, object]], gt_boxes: Sequence[Mapping[str, Box]],
                     iou_threshold: float = 0.5) -> dict:
    """Region detection quality over images (one ground-truth box per region per image).

    pred_boxes[i][region] is a box, a (box, score) pair or a list of pairs. `iou` per region
    is the mean over images with that region of the best-scored prediction's IoU (0 when
    missed); `mean_iou` averages regions; `map50` is the mean AP at IoU >= 0.5 over regions.
    """
    if len(pred_boxes) != len(gt_boxes):
        raise ValueError("pred_boxes and gt_boxes differ in length")
    regions = sorted({r for gt in gt_boxes for r in gt})
    ious: dict[str, list[float]] = {r: [] for r in regions}
    hits: dict[str, list[tuple[float, bool]]] = {r: [] for r in regions}
    for preds, truth in zip(pred_boxes, gt_boxes):
        for region in regions:
            scored = sorted(_as_scored(preds.get(region)), key=lambda bs: -bs[1])
            if region not in truth:
                hits[region].extend((score, False) for _, score in scored)
                continue
            ious[region].append(box_iou(scored[0][0], truth[region]) if scored else 0.0)
            matched = False
            for box, score in scored:
                is_hit = not matched and box_iou(box, truth[region]) >= iou_threshold
                matched = matched or is_hit
                hits[region].append((score, is_hit))
    iou = {r: float(np.mean(v)) for r, v in ious.items() if v}
    ap = {r: _average_precision(hits[r], len(ious[r])) for r in regions}
    return {
        "iou": iou,
        "mean_iou": float(np.mean(list(iou.values()))) if iou else 0.0,
        "ap50": ap,
        "map50": float(np.nanmean(list(ap.values()))) if ap else 0.0,
    }


def binary_auc(y_true: Sequence[int], y_score: Sequence[float]) -> float | None:
    """ROC AUC via the Mann-Whitney U statistic with average ranks for ties.

    Equals the probability that a random positive scores above a random negative, ties
    counting one half. None when only one class is present.
    """
    truth = np.asarray(y_true).astype(bool).ravel()
    score = np.asarray(y_score, dtype=float).ravel()
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score), dtype=float)
    sorted_scores = score[order]
    start = 0
    while start < len(score):  # average rank over each run of tied scores
        end = start
        while end + 1 < len(score) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    u_statistic = ranks[truth].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u_statistic / (n_pos * n_neg))


def auc_per_finding(y_true, y_score, names: Sequence[str] | None = None) -> dict[str, float | None]:
    """AUC per column of (N, F) arrays; names default to FINDING_NAMES when F == 14."""
    truth, score = np.asarray(y_true), np.asarray(y_score, dtype=float)
    if truth.shape != score.shape or truth.ndim != 2:
        raise ValueError(f"y_true {truth.shape} and y_score {score.shape} must be equal (N, F) arrays")
    if names is None:
        names = FINDING_NAMES if truth.shape[1] == len(FINDING_NAMES) else [str(k) for k in range(truth.shape[1])]
    return {name: binary_auc(truth[:, k], score[:, k]) for k, name in enumerate(names)}


def masked_auc_per_finding(y_true, mask, y_score, names: Sequence[str], min_cases: int = 1
                           ) -> dict[str, float | None]:
    """AUC per finding over the images where that finding is labelled (mask 1); None when fewer
    than `min_cases` positives or negatives are labelled."""
    truth, labelled, score = np.asarray(y_true), np.asarray(mask).astype(bool), np.asarray(y_score, dtype=float)
    out: dict[str, float | None] = {}
    for k, name in enumerate(names):
        rows = labelled[:, k]
        positives = int(truth[rows, k].sum())
        if min(positives, int(rows.sum()) - positives) < min_cases:
            out[name] = None
            continue
        out[name] = binary_auc(truth[rows, k], score[rows, k])
    return out


def bootstrap_auc_interval(truth, score, resamples: int = 1000, seed: int = 0, level: float = 0.95
                           ) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the AUC (images resampled with replacement; resamples
    with one class only are skipped)."""
    truth, score = np.asarray(truth), np.asarray(score, dtype=float)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        pick = rng.integers(0, len(truth), len(truth))
        auc = binary_auc(truth[pick], score[pick])
        if auc is not None:
            values.append(auc)
    if len(values) < resamples // 2:
        return None, None
    tail = (1.0 - level) / 2.0
    return float(np.quantile(values, tail)), float(np.quantile(values, 1.0 - tail))


def within_source_mean_auc(y_true, mask, y_score, sources: Sequence[str], min_cases: int = 3) -> float | None:
    """Mean AUC over (source, finding) pairs, each computed WITHIN one source (>= min_cases
    positives and negatives there). A model that only tells sources apart (one hospital's
    images are all pneumonia, another's all normal) scores 0.5 here, however high its pooled AUC."""
    truth, labelled, score = np.asarray(y_true), np.asarray(mask).astype(bool), np.asarray(y_score, dtype=float)
    sources = np.asarray(sources)
    aucs = []
    for source in sorted(set(sources.tolist())):
        rows = sources == source
        for k in range(truth.shape[1]):
            keep = rows & labelled[:, k]
            positives = int(truth[keep, k].sum())
            if min(positives, int(keep.sum()) - positives) >= min_cases:
                aucs.append(binary_auc(truth[keep, k], score[keep, k]))
    return float(np.mean(aucs)) if aucs else None
