"""The classifier's frozen-ImageNet feature probe: the folded regression, the logit mix, the
bundle round trip and the card's refusal of a mix without a probe."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rrg_desk.models.bundle import load_bundle, save_bundle
from rrg_desk.models.card import BundleIncompatibleError, Classification
from rrg_desk.models.classify import study_probabilities
from rrg_desk.models.feature_probe import FeatureProbe, FeatureProbeConfig, mix_logits
from rrg_desk.models.findings import FINDING_NAMES
from tests.models.test_bundle import PREPROCESSING, _models
from train.feature_probe import fit_regression, regression_logits


@pytest.fixture(scope="module")
def probe() -> FeatureProbe:
    torch.manual_seed(3)
    return FeatureProbe(FeatureProbeConfig(image_size=32)).eval()


def test_the_folded_regression_gives_the_standardised_regressions_logits(probe):
    rng = np.random.default_rng(0)
    features = rng.normal(2.0, 3.0, size=(40, probe.head.in_features))
    labels = (features[:, :len(FINDING_NAMES)] > 2.0).astype(np.float32)
    mask = np.ones_like(labels)
    regression = fit_regression(features, labels, mask, l2=1.0)
    probe.set_regression(*(torch.as_tensor(a, dtype=torch.float32) for a in regression))
    with torch.no_grad():
        folded = probe.head(torch.as_tensor(features, dtype=torch.float32)).numpy()
    assert np.allclose(folded, regression_logits(regression, features), atol=1e-3)
    # the fit learnt something: each finding's logit ranks its own label's feature
    assert np.corrcoef(folded[:, 0], features[:, 0])[0, 1] > 0.5


def test_the_probe_resizes_any_image_to_its_size(probe):
    with torch.no_grad():
        small, large = probe(torch.randn(2, 1, 48, 48)), probe(torch.randn(1, 1, 96, 80))
    assert small.shape == (2, len(FINDING_NAMES)) and large.shape == (1, len(FINDING_NAMES))


def test_mixing_in_logit_space():
    p = torch.tensor([[0.2, 0.9]])
    probe_logits = torch.tensor([[2.0, -1.0]])
    assert torch.allclose(mix_logits(p, probe_logits, 0.0), p, atol=1e-6)
    expected = torch.sigmoid(0.5 * torch.logit(p) + 0.5 * probe_logits)
    assert torch.allclose(mix_logits(p, probe_logits, 0.5), expected)


def test_a_bundle_carries_the_probe_and_the_card_its_weight(probe, tmp_path):
    detector, classifier, generator, tokenizer = _models()
    classifier.attach_feature_probe(probe)
    folder = save_bundle(tmp_path / "probe", detector=detector, classifier=classifier, generator=generator,
                         tokenizer=tokenizer, card_extra={"preprocessing": PREPROCESSING,
                                                          "classification": {"mode": "head", "probe_weight": 0.5}},
                         half_precision=("classifier",))
    bundle = load_bundle(folder)
    assert bundle.card.classification.probe_weight == 0.5
    loaded = bundle.classifier.feature_probe
    assert loaded is not None and loaded.config.image_size == 32
    assert torch.allclose(loaded.head.weight, probe.head.weight, atol=1e-3)
    images = torch.randn(2, 1, 64, 64)
    with torch.inference_mode():
        mixed = study_probabilities(bundle.classifier, images, bundle.card.classification, None)
        head_only = study_probabilities(bundle.classifier, images, Classification(mode="head"), None)
    assert mixed.shape == (len(FINDING_NAMES),) and not torch.allclose(mixed, head_only)


def test_a_card_that_mixes_in_a_probe_the_classifier_lacks_is_refused(tmp_path):
    detector, classifier, generator, tokenizer = _models()
    folder = save_bundle(tmp_path / "no-probe", detector=detector, classifier=classifier, generator=generator,
                         tokenizer=tokenizer, card_extra={"preprocessing": PREPROCESSING,
                                                          "classification": {"mode": "head", "probe_weight": 0.5}})
    with pytest.raises(BundleIncompatibleError, match="do not fit together"):
        load_bundle(folder)


def test_cards_without_a_probe_keep_their_form():
    assert "probe_weight" not in Classification(mode="head").to_dict()
    with pytest.raises(ValueError, match="probe_weight"):
        Classification.from_card({"mode": "head", "probe_weight": 1.5})
    assert json.loads(json.dumps(Classification(probe_weight=0.25).to_dict()))["probe_weight"] == 0.25


def test_a_finding_heatmap_mixes_in_the_probes_grad_cam_on_its_grid():
    _detector, classifier, _generator, _tokenizer = _models()
    torch.manual_seed(5)
    probe = FeatureProbe(FeatureProbeConfig(image_size=128)).eval()  # a 4 x 4 grid
    classifier.attach_feature_probe(probe)
    classifier.eval()
    images = torch.randn(1, 1, 64, 64)
    with torch.inference_mode():
        head_only = classifier.finding_heatmaps(images, 2)
        mixed = classifier.finding_heatmaps(images, 2, probe_weight=0.75)
        probe_only = probe.finding_heatmaps(images, 2)
    assert head_only.shape == (1, 2, 2) and mixed.shape == probe_only.shape == (1, 4, 4)
    assert float(mixed.max()) == pytest.approx(1.0) and float(mixed.min()) >= 0.0
    upsampled = torch.nn.functional.interpolate(head_only[:, None], size=(4, 4), mode="bilinear",
                                                align_corners=False)[:, 0]
    expected = 0.25 * upsampled + 0.75 * probe_only
    assert torch.allclose(mixed, expected / expected.max(), atol=1e-5)
