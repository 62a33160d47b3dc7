"""Blending "not normal" (1 - P(No Finding)) into each abnormal finding's score: the formula,
what it leaves alone, the card field, the app's study path and the trainer's calibration."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rrg_desk.models.card import Classification
from rrg_desk.models.classify import NOT_ABNORMALITIES, blend_abnormality, study_probabilities
from rrg_desk.models.findings import FINDING_NAMES, NO_FINDING
from tests.models.test_bundle import _models
from train.calibration import _blend_abnormality_into

NAMES = list(FINDING_NAMES)


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def test_each_abnormal_finding_moves_towards_not_normal_in_logit_space():
    probs = torch.full((2, len(NAMES)), 0.2, dtype=torch.float64)
    probs[:, NAMES.index(NO_FINDING)] = torch.tensor([0.9, 0.1], dtype=torch.float64)
    blended = blend_abnormality(probs, NAMES, 0.5)
    effusion = NAMES.index("Pleural Effusion")
    for row, p_normal in enumerate((0.9, 0.1)):
        expected = 1 / (1 + np.exp(-(0.5 * _logit(0.2) + 0.5 * _logit(1 - p_normal))))
        assert float(blended[row, effusion]) == pytest.approx(expected, abs=1e-9)
    # a normal-looking chest lowers the finding, an abnormal one raises it
    assert blended[0, effusion] < 0.2 < blended[1, effusion]


def test_no_finding_and_devices_are_left_alone_and_weight_zero_changes_nothing():
    probs = torch.rand(3, len(NAMES), generator=torch.Generator().manual_seed(0))
    blended = blend_abnormality(probs, NAMES, 0.75)
    for name in NOT_ABNORMALITIES:
        k = NAMES.index(name)
        assert torch.allclose(blended[:, k], probs[:, k], atol=1e-6)
    assert blend_abnormality(probs, NAMES, 0.0) is probs
    without_no_finding = [n for n in NAMES if n != NO_FINDING]
    assert torch.equal(blend_abnormality(probs[:, 1:], without_no_finding, 0.5), probs[:, 1:])


def test_the_card_carries_the_weight_and_refuses_a_weight_outside_0_1():
    assert "abnormality_weight" not in Classification(mode="head").to_dict()  # older cards keep their form
    card = Classification.from_card({"mode": "head", "abnormality_weight": 0.5})
    assert card.abnormality_weight == 0.5 and card.to_dict()["abnormality_weight"] == 0.5
    with pytest.raises(ValueError, match="abnormality_weight"):
        Classification.from_card({"mode": "head", "abnormality_weight": 1.0})


def test_the_study_path_blends_before_calibration():
    _detector, classifier, _generator, _tokenizer = _models()
    classifier.eval()
    images = torch.randn(1, 1, 64, 64)
    with torch.inference_mode():
        plain = study_probabilities(classifier, images, Classification(mode="head"), None)
        blended = study_probabilities(classifier, images, Classification(mode="head", abnormality_weight=0.5), None)
    expected = blend_abnormality(plain[None], NAMES, 0.5)[0]
    assert torch.allclose(blended, expected, atol=1e-5)
    k = NAMES.index(NO_FINDING)
    assert float(blended[k]) == pytest.approx(float(plain[k]), abs=1e-6)


def test_calibration_blends_every_modes_validation_scores_and_records_the_change():
    rng = np.random.default_rng(1)
    n = 60
    abnormal = rng.random(n) < 0.5
    labels = np.zeros((n, len(NAMES)), dtype=np.float32)
    labels[:, NAMES.index(NO_FINDING)] = ~abnormal
    labels[:, NAMES.index("Pleural Effusion")] = abnormal & (rng.random(n) < 0.5)
    mask = np.ones_like(labels)
    scores = {"head": rng.random((n, len(NAMES))), "zero_shot": rng.random((n, len(NAMES)))}
    # No Finding score that knows normal from abnormal; effusion's own score is noise
    scores["head"][:, NAMES.index(NO_FINDING)] = np.where(abnormal, 0.2, 0.8) + 0.05 * rng.random(n)
    before = {m: s.copy() for m, s in scores.items()}
    weight, record = _blend_abnormality_into({"clip": {"abnormality_weight": 0.5}}, scores, labels, mask, NAMES,
                                             ["nih"] * n)
    assert weight == 0.5 and set(record["within_source_mean_auc_after"]) == {"head", "zero_shot"}
    for mode in scores:
        assert np.allclose(scores[mode], blend_abnormality(torch.as_tensor(before[mode]), NAMES, 0.5).numpy())
    assert record["within_source_mean_auc_after"]["head"] > record["within_source_mean_auc_before"]["head"]
    unchanged = {m: s.copy() for m, s in before.items()}
    assert _blend_abnormality_into({"clip": {}}, unchanged, labels, mask, NAMES, ["nih"] * n)[0] == 0.0
    assert all(np.array_equal(unchanged[m], before[m]) for m in before)
