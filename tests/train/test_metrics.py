"""Metrics on small fixed examples, checked against independent computations."""
from __future__ import annotations

import math
import shutil
from collections import Counter

import numpy as np
import pytest

from rrg_desk.models.findings import FINDING_NAMES
from train.metrics import auc_per_finding, binary_auc, box_iou, ce_metrics, detector_metrics, nlg_metrics

REFS = {"a": "the heart is normal . no effusion .", "b": "lungs are clear .", "c": "small left pleural effusion ."}
HYPS = {"a": "the heart is enlarged . no effusion .", "b": "the lungs are clear .", "c": "no pleural effusion ."}


def _ngrams(words, n):
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def _bleu(refs, hyps, n_max):
    """Corpus BLEU with the brevity penalty on the closest reference length (one ref each),
    and pycocoevalcap's tiny/small constants (1e-15, 1e-9) in the log precisions."""
    correct, total = [0] * n_max, [0] * n_max
    hyp_len = ref_len = 0
    for key in refs:
        h, r = hyps[key].split(), refs[key].split()
        hyp_len += len(h)
        ref_len += len(r)
        for n in range(1, n_max + 1):
            hc, rc = _ngrams(h, n), _ngrams(r, n)
            correct[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            total[n - 1] += max(len(h) - n + 1, 0)
    log_p = sum(math.log((correct[n] + 1e-15) / (total[n] + 1e-9)) for n in range(n_max)) / n_max
    penalty = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return math.exp(log_p) * penalty


def _lcs(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def _rouge_l(ref, hyp, beta=1.2):
    lcs = _lcs(ref.split(), hyp.split())
    p, r = lcs / len(hyp.split()), lcs / len(ref.split())
    return 0.0 if lcs == 0 else (1 + beta ** 2) * p * r / (r + beta ** 2 * p)


def _cider_d(refs, hyps, n_max=4, sigma=6.0):
    """CIDEr-D (Vedantam et al.): tf-idf n-gram cosine, clipped, length-penalised, x10."""
    keys = list(refs)
    doc_freq = Counter()
    for key in keys:
        for n in range(1, n_max + 1):
            doc_freq.update(set(_ngrams(refs[key].split(), n)))
    log_docs = math.log(float(len(keys)))

    def vec(words, n):
        counts = _ngrams(words, n)
        return {g: c * (log_docs - math.log(max(1.0, doc_freq[g]))) for g, c in counts.items()}

    scores = []
    for key in keys:
        h, r = hyps[key].split(), refs[key].split()
        total = 0.0
        for n in range(1, n_max + 1):
            vh, vr = vec(h, n), vec(r, n)
            dot = sum(min(v, vr.get(g, 0.0)) * vr.get(g, 0.0) for g, v in vh.items())
            norm_h = math.sqrt(sum(v * v for v in vh.values()))
            norm_r = math.sqrt(sum(v * v for v in vr.values()))
            cos = dot / (norm_h * norm_r) if norm_h and norm_r else 0.0
            total += cos * math.exp(-((len(h) - len(r)) ** 2) / (2 * sigma ** 2))
        scores.append(total / n_max * 10.0)
    return float(np.mean(scores))


def test_bleu_rouge_cider_match_independent_implementations():
    metrics = nlg_metrics(REFS, HYPS, with_meteor=False)
    for n in range(1, 5):
        assert metrics[f"BLEU-{n}"] == pytest.approx(_bleu(REFS, HYPS, n), abs=1e-9)
    assert metrics["ROUGE-L"] == pytest.approx(np.mean([_rouge_l(REFS[k], HYPS[k]) for k in REFS]), abs=1e-12)
    assert metrics["CIDEr"] == pytest.approx(_cider_d(REFS, HYPS), abs=1e-9)
    assert metrics["METEOR"] is None
    assert all(isinstance(v, float) for k, v in metrics.items() if k != "METEOR")


def test_bleu_1_by_hand_and_newlines_are_ignored():
    # 6 hypothesis words, 4 in the 4-word reference; hypothesis longer -> no brevity penalty
    metrics = nlg_metrics({"x": "no acute\ndisease ."}, {"x": "no acute  cardiopulmonary disease . ."},
                          with_meteor=False)
    assert metrics["BLEU-1"] == pytest.approx(4 / 6, abs=1e-9)
    assert metrics["ROUGE-L"] == pytest.approx(_rouge_l("no acute disease .", "no acute cardiopulmonary disease . ."))


def test_mismatched_ids_are_refused():
    with pytest.raises(ValueError):
        nlg_metrics({"a": "x"}, {"b": "x"}, with_meteor=False)


@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs a Java runtime")
def test_meteor_is_deterministic():
    # recorded from the first run (pycocoevalcap 1.2, METEOR 1.5, -l en -norm)
    assert nlg_metrics(REFS, HYPS)["METEOR"] == pytest.approx(0.4028319637151668, abs=1e-6)


def test_auc_by_hand_with_ties():
    # positives 0.35, 0.8, 0.5 vs negatives 0.1, 0.4, 0.5 (9 pairs):
    # 0.35 beats 0.1 only (1); 0.8 beats all (3); 0.5 beats 0.1, 0.4 and ties 0.5 (2.5) -> 6.5 / 9
    assert binary_auc([0, 0, 1, 1, 1, 0], [0.1, 0.4, 0.35, 0.8, 0.5, 0.5]) == pytest.approx(6.5 / 9)
    assert binary_auc([1, 0], [0.3, 0.3]) == pytest.approx(0.5)
    assert binary_auc([1, 1], [0.2, 0.9]) is None


def test_auc_per_finding_names_and_single_class_columns():
    y_true = np.zeros((4, 14), dtype=int)
    y_true[:2, 3] = 1
    scores = np.tile(np.array([[0.9], [0.8], [0.1], [0.2]]), (1, 14))
    aucs = auc_per_finding(y_true, scores)
    assert list(aucs) == list(FINDING_NAMES)
    assert aucs["Lung Lesion"] == pytest.approx(1.0) and aucs["Edema"] is None


def test_ce_metrics_micro_macro_by_hand():
    refs = ["There is a large right pleural effusion. Cardiomegaly.", "No pneumothorax. Clear lungs."]
    hyps = ["Small right pleural effusion. Heart size normal.", "Right pneumothorax. Possible edema."]
    result = ce_metrics(refs, hyps)
    # ref positives: PE, CM (study 1); No Finding (study 2). hyp positives: PE (1); Pneumothorax (2)
    # -> TP = 1 (PE), FP = 1 (PTX), FN = 2 (CM, No Finding)
    assert result["micro_precision"] == pytest.approx(1 / 2)
    assert result["micro_recall"] == pytest.approx(1 / 3)
    assert result["micro_f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    assert result["macro_f1"] == pytest.approx(1 / 14)  # only Pleural Effusion scores (F1 = 1)
    assert result["per_finding"]["Cardiomegaly"]["support"] == 1


def test_detector_metrics_by_hand():
    gt = [{"heart": (0, 0, 10, 10), "left_lung": (20, 20, 30, 30)}, {"heart": (0, 0, 10, 10)}]
    pred = [{"heart": ((0, 0, 10, 5), 0.9), "left_lung": ((20, 20, 30, 30), 0.8)},
            {"heart": [((50, 50, 60, 60), 0.95), ((0, 0, 10, 10), 0.3)]}]
    result = detector_metrics(pred, gt)
    assert box_iou((0, 0, 10, 5), (0, 0, 10, 10)) == pytest.approx(0.5)
    # heart: image 1 IoU 0.5, image 2 best-scored box misses (IoU 0) -> 0.25
    assert result["iou"] == pytest.approx({"heart": 0.25, "left_lung": 1.0})
    assert result["mean_iou"] == pytest.approx(0.625)
    # heart ranking over 2 truths: 0.95 miss (P 0, R 0), 0.9 hit (P 1/2, R 1/2), 0.3 hit (P 2/3, R 1).
    # All-point interpolation takes at each recall the best precision at that recall or beyond:
    # recall 0 -> 0.5 at 2/3 and 0.5 -> 1 at 2/3 -> AP = 2/3
    assert result["ap50"]["heart"] == pytest.approx(2 / 3)
    assert result["map50"] == pytest.approx((2 / 3 + 1.0) / 2)
