"""The classifier's training parts: pretrained-weight conversion, label sources, calibration,
thresholds, the contrastive loss with repeated texts, augmentation, evaluation tables."""
from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F

from rrg_desk.models.clip_classifier import ClipClassifier, ClipClassifierConfig, build_backbone
from rrg_desk.models.classify import calibrate
from rrg_desk.models.findings import FINDING_NAMES
from train.calibration import apply_platt, choose_threshold, fit_platt, select_classification
from train.classifier_evaluation import auc_table, evaluation_groups
from train.data.finding_labels import (LabelledImage, covid_labels, label_vector, labelled_images, nih_labels,
                                       read_jsrt, read_nih)
from train.metrics import bootstrap_auc_interval, masked_auc_per_finding
from train.pretrained import PretrainedWeightsError, convert_state_dict, load_imagenet_backbone, weights_file
from train.tasks.clip_task import augment, contrastive_loss, label_text, positive_weights

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _original_layout_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A state dict in EfficientNet-PyTorch's naming (different names, same order, `_fc` last),
    standing in for the PyPI package's file."""
    state = model.state_dict()
    renamed = {}
    for index, (key, value) in enumerate(state.items()):
        if key.startswith("classifier."):
            renamed["_fc." + key.split(".")[-1]] = value.clone()
        else:
            renamed[f"_blocks_{index}.{key.split('.')[-1]}"] = value.clone()
    return renamed


def test_imagenet_weights_convert_in_order_and_grey_stem_matches_rgb(tmp_path):
    torch.manual_seed(0)
    rgb = timm.create_model("test_efficientnet", pretrained=False, num_classes=1000).eval()
    with torch.no_grad():  # non-trivial BN statistics, so a wrong mapping would show
        for module in rgb.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "weights.pth"
    torch.save(_original_layout_state(rgb), path)
    grey = build_backbone("test_efficientnet").eval()
    provenance = load_imagenet_backbone(grey, "test_efficientnet", path=path)
    image = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        expected = rgb.forward_head(rgb.forward_features(image.expand(-1, 3, -1, -1)), pre_logits=True)
        torch.testing.assert_close(grey(image), expected, rtol=1e-4, atol=1e-4)
    assert len(provenance["sha256"]) == 64 and provenance["licence"] == "Apache-2.0"


def test_conversion_refuses_weights_of_another_shape():
    grey = build_backbone("test_efficientnet")
    other = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    with pytest.raises(PretrainedWeightsError):
        convert_state_dict(_original_layout_state(other), grey.state_dict())
    with pytest.raises(PretrainedWeightsError, match="no ImageNet weights package"):
        weights_file("resnet50")


def test_nih_labels_map_onto_the_app_findings():
    labels = nih_labels("Effusion|Infiltration|Nodule|Emphysema")
    assert labels["Pleural Effusion"] == labels["Lung Opacity"] == labels["Lung Lesion"] == 1
    assert labels["No Finding"] == 0 and labels["Cardiomegaly"] == 0
    assert "Support Devices" not in labels and "Fracture" not in labels  # NIH does not label them
    normal = nih_labels("No Finding")
    assert normal["No Finding"] == 1 and sum(normal.values()) == 1
    assert nih_labels("Pleural_Thickening")["Pleural Other"] == 1
    with pytest.raises(ValueError):
        nih_labels("Dragons")
    values, mask = label_vector(nih_labels("Mass"))
    assert values[FINDING_NAMES.index("Lung Lesion")] == 1 and mask[FINDING_NAMES.index("Fracture")] == 0


def test_covid_labels_from_diagnosis_and_note():
    labels = covid_labels("COVID-19", "Bilateral ground-glass opacities. No pleural effusion.")
    assert labels["Pneumonia"] == 1 and labels["No Finding"] == 0 and labels["Pleural Effusion"] == 0
    assert covid_labels("No Finding", "")["No Finding"] == 1
    assert "Pneumonia" not in covid_labels("todo", "The heart is normal in size.")


@pytest.mark.skipif(not (DATA / "nih_cxr14").is_dir(), reason="needs ../shared/data")
def test_real_sources_split_by_patient_and_label_what_they_know():
    nih = read_nih(DATA / "nih_cxr14")
    assert len(nih) == 1196
    patients = {split: {i.patient for i in nih if i.split == split} for split in ("train", "val", "test")}
    assert not (patients["train"] & patients["test"]) and not (patients["val"] & patients["test"])
    jsrt = read_jsrt(DATA / "jsrt_scr")
    nodules = [i for i in jsrt if i.path.name.startswith("JPCLN")]
    lesion = FINDING_NAMES.index("Lung Lesion")
    assert nodules and all(i.labels[lesion] == 1 for i in nodules)
    assert all(i.labels[lesion] == 0 and i.mask[lesion] == 1 for i in jsrt if i not in nodules)
    test = labelled_images({"nih": str(DATA / "nih_cxr14"), "jsrt": str(DATA / "jsrt_scr")}, "test")
    groups = evaluation_groups(test)
    assert set(groups) >= {"nih", "jsrt", "nih_darkcovidnet", "nih_other_sources"}
    assert len(groups["nih_darkcovidnet"]) + len(groups["nih_other_sources"]) == len(groups["nih"])


def test_platt_calibration_fixes_an_overconfident_score():
    rng = np.random.default_rng(0)
    true_p = np.where(rng.integers(0, 2, 2000) == 1, 0.7, 0.3)
    truth = (rng.random(2000) < true_p).astype(int)
    overconfident = 1 / (1 + np.exp(-3 * np.log(true_p / (1 - true_p))))  # logit x3
    scale, bias = fit_platt(overconfident, truth)
    assert 0.2 < scale < 0.5 and abs(bias) < 0.2
    calibrated = apply_platt(overconfident, scale, bias)
    assert abs(calibrated[true_p == 0.7].mean() - 0.7) < 0.05
    # the app applies the same map from the card
    torch_calibrated = calibrate(torch.tensor(overconfident[None, :1].repeat(14, 1).T), list(FINDING_NAMES),
                                 {"Edema": {"scale": scale, "bias": bias}})
    edema = FINDING_NAMES.index("Edema")
    assert torch_calibrated[0, edema].item() == pytest.approx(calibrated[0], abs=1e-5)
    assert torch_calibrated[0, 0].item() == pytest.approx(overconfident[0], abs=1e-5)


def test_thresholds_f1_and_youden():
    probs = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    truth = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    assert choose_threshold(probs, truth, "f1") == pytest.approx(0.4)
    assert choose_threshold(probs, truth, "youden") in (0.4, 0.7)
    with pytest.raises(ValueError):
        choose_threshold(probs, truth, "magic")


def test_selection_picks_the_better_mode_and_validates_only_skilled_findings():
    rng = np.random.default_rng(1)
    n = 200
    labels = rng.integers(0, 2, (n, 14)).astype(float)
    mask = np.ones((n, 14))
    mask[:, 12] = 0  # Fracture never labelled
    good = np.clip(labels * 0.6 + rng.random((n, 14)) * 0.4, 0, 1)
    noise = rng.random((n, 14))
    result = select_classification({"head": good, "zero_shot": noise}, labels, mask, list(FINDING_NAMES))
    assert result["mode"] == "head"
    record = result["validation"]["per_finding"]
    assert record["Cardiomegaly"]["validated"] and record["Cardiomegaly"]["calibrated"]
    assert not record["Fracture"]["validated"] and result["thresholds"]["Fracture"] == 1.0  # never asserted
    forced = select_classification({"head": good, "zero_shot": noise}, labels, mask, list(FINDING_NAMES), "zero_shot")
    assert forced["mode"] == "zero_shot"
    assert all(not r["validated"] or r["val_auc"] >= 0.6 for r in forced["validation"]["per_finding"].values())


def test_label_text_uses_the_prompts():
    prompts = [[f"pos {n}.", f"neg {n}."] for n in FINDING_NAMES]
    labels, mask = label_vector(nih_labels("Effusion"))
    text = label_text(labels, mask, prompts, random.Random(0))
    assert "pos Pleural Effusion." in text and "pos No Finding." not in text and "neg Pleural Effusion" not in text
    normal_labels, normal_mask = label_vector(nih_labels("No Finding"))
    assert label_text(normal_labels, normal_mask, prompts, random.Random(0)).startswith("pos No Finding.")


def test_augment_keeps_shape_range_and_changes_the_image():
    from rrg_desk.models.card import Preprocessing

    spec = Preprocessing(64, 0.5, 0.25)
    images = (torch.rand(4, 1, 64, 64) - 0.5) / 0.25
    out = augment(images, 48, spec, torch.Generator().manual_seed(0))
    assert out.shape == (4, 1, 48, 48)
    unit = out * 0.25 + 0.5
    assert unit.min() >= -0.05 and unit.max() <= 1.05
    plain = torch.nn.functional.interpolate(images, size=(48, 48), mode="bilinear", antialias=True)
    assert (out - plain).abs().mean() > 0.05


def test_positive_weights_up_weight_rare_findings():
    item = lambda labels: LabelledImage(Path("x"), *label_vector(nih_labels(labels)), "nih", "train", "p", "PA")
    items = [item("No Finding")] * 15 + [item("Pneumothorax")]
    weights = positive_weights(items, cap=8.0)
    assert weights[FINDING_NAMES.index("Pneumothorax")] == pytest.approx(np.sqrt(15))
    assert weights[FINDING_NAMES.index("No Finding")] == pytest.approx(1.0)


def test_auc_table_intervals_and_masks():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (120, 14)).astype(float)
    scores = labels * 0.5 + rng.random((120, 14)) * 0.6
    mask = np.ones_like(labels)
    mask[:, 3] = 0
    table = auc_table(labels, mask, scores, resamples=200)
    edema = table["per_finding"]["Edema"]
    low, high = edema["ci95"]
    assert low < edema["auc"] < high and edema["auc"] > 0.7
    assert table["per_finding"]["Lung Lesion"]["auc"] is None
    assert table["goal_findings_defined"] == 8
    aucs = masked_auc_per_finding(labels, mask, scores, FINDING_NAMES, min_cases=3)
    assert aucs["Lung Lesion"] is None and aucs["Edema"] == pytest.approx(edema["auc"])
    assert bootstrap_auc_interval([1, 1, 1], [0.1, 0.2, 0.3]) == (None, None)


def test_labels_constant_within_a_source_are_unlabelled():
    from train.data.finding_labels import mask_source_constant_labels

    def item(source, labels):
        return LabelledImage(Path("x"), *label_vector(labels), source, "train", "p", "PA")

    pneumonia, nothing = FINDING_NAMES.index("Pneumonia"), FINDING_NAMES.index("No Finding")
    covid = [item("covid_cxr", {"Pneumonia": 1, "No Finding": 0})] * 40 + [item("covid_cxr", {"Pneumonia": 0})] * 2
    nih = [item("nih:a", nih_labels("Pneumonia"))] * 10 + [item("nih:b", nih_labels("No Finding"))] * 30
    masked = mask_source_constant_labels(covid + nih)
    assert all(i.mask[pneumonia] == 0 for i in masked[:42])  # all-pneumonia source: teaches the hospital
    assert all(i.mask[pneumonia] == 1 and i.mask[nothing] == 1 for i in masked[42:])  # varies within NIH


def test_within_source_auc_gives_nothing_for_telling_sources_apart():
    from train.metrics import within_source_mean_auc

    rng = np.random.default_rng(0)
    labels = np.concatenate([np.ones(50), np.zeros(50)])
    labels = np.stack([labels, rng.integers(0, 2, 100)], axis=1)
    labels[:50, 0] = rng.integers(0, 2, 50)  # source A: label varies; source B: all 0
    sources = ["a"] * 50 + ["b"] * 50
    source_score = np.stack([np.r_[np.full(50, 0.9), np.full(50, 0.1)], rng.random(100)], axis=1)
    mask = np.ones_like(labels)
    pooled = masked_auc_per_finding(labels, mask, source_score, ["x", "y"])["x"]
    assert pooled > 0.7  # the pooled AUC rewards knowing the source
    assert within_source_mean_auc(labels, mask, source_score, sources) == pytest.approx(0.5, abs=0.1)


def test_a_threshold_resting_on_few_validation_positives_is_at_least_even_odds():
    """F1 on 4 positives placed pneumothorax's cut at p = 0.06; with fewer than 10 validation
    positives the cut is never below a calibrated 0.5."""
    rng = np.random.default_rng(2)
    n = 300
    labels = np.zeros((n, 14))
    mask = np.ones((n, 14))
    pneumothorax, effusion = FINDING_NAMES.index("Pneumothorax"), FINDING_NAMES.index("Pleural Effusion")
    labels[:4, pneumothorax] = 1          # 4 positives: too few to place a cut
    labels[:60, effusion] = 1             # 60 positives: the F1 cut stands
    scores = np.clip(labels * 0.25 + rng.random((n, 14)) * 0.3, 0, 1)
    result = select_classification({"head": scores}, labels, mask, list(FINDING_NAMES), "head")
    record = result["validation"]["per_finding"]
    assert record["Pneumothorax"]["validated"] and result["thresholds"]["Pneumothorax"] >= 0.5
    assert record["Pneumothorax"]["threshold_rule"] == "max(f1, 0.5)"
    assert record["Pleural Effusion"]["threshold_rule"] == "f1"
    calibrated = apply_platt(scores[:, effusion], **result["calibration"]["Pleural Effusion"])
    assert result["thresholds"]["Pleural Effusion"] == pytest.approx(
        choose_threshold(calibrated, labels[:, effusion], "f1"), abs=1e-6)


def test_source_weights_scale_the_loss_weight_of_one_source_only(caplog):
    from train.data.finding_labels import weight_sources

    labels, mask = label_vector(nih_labels("Pneumonia"))
    picked = LabelledImage(Path("a.jpg"), labels, mask, "nih:muhammedtalo/COVID-19", "train", "1", "AP")
    other = LabelledImage(Path("b.jpg"), labels, mask, "nih:rsummers11/CADLab", "train", "2", "PA")
    tb = LabelledImage(Path("c.jpg"), labels, mask, "tb:shenzhen", "train", "3", "PA")
    out = weight_sources([picked, other, tb], {"nih:muhammedtalo/COVID-19": 0.1, "tb": 0.5})
    assert out[0].mask == tuple(0.1 * m for m in mask) and out[0].labels == labels
    assert out[1] is other
    assert out[2].mask == tuple(0.5 * m for m in mask)
    with caplog.at_level(logging.WARNING, logger="train.data.finding_labels"):
        assert weight_sources([other], {"nih:nowhere": 0.1}) == [other]  # e.g. local data without that subset
    assert "nih:nowhere" in caplog.text
    # a weighted mask is a weighted mean in the head loss
    from rrg_desk.models.clip_classifier import ClipClassifier

    logits = torch.tensor([[2.0], [-1.0]])
    targets = torch.tensor([[0.0], [1.0]])
    weighted = ClipClassifier.head_loss(logits, targets, torch.tensor([[0.1], [1.0]]))
    per_image = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    assert weighted.item() == pytest.approx(float((0.1 * per_image[0] + per_image[1]) / 1.1))


def test_a_measurement_fit_recovers_a_known_logistic_map():
    rng = np.random.default_rng(0)
    values = rng.uniform(0.35, 0.7, 4000)
    truth = (rng.random(4000) < 1 / (1 + np.exp(-(20.0 * values - 11.0)))).astype(float)
    from train.calibration import fit_measurement

    scale, bias = fit_measurement(values, truth)
    assert scale == pytest.approx(20.0, rel=0.15) and bias / scale == pytest.approx(-11.0 / 20.0, rel=0.03)


def _labelled(index: int, positive: bool, source: str, split: str) -> LabelledImage:
    labels, mask = label_vector({"Cardiomegaly": int(positive)})
    return LabelledImage(Path(f"/img/{split}{index}.png"), labels, mask, source, split, f"p{split}{index}", "PA")


def _measured_setup(monkeypatch, ratios: dict[str, float]):
    """Stand the detector in by a table of cardiothoracic ratios per image path."""
    import train.calibration as calibration

    monkeypatch.setattr(calibration, "_trained_detector", lambda config, device: "a trained detector")
    monkeypatch.setattr(calibration, "_measure_items", lambda detector, items, spec, device: [
        {"cardiothoracic_ratio": ratios[str(i.path)]} if str(i.path) in ratios else {} for i in items])
    return {"preprocessing": {"image_size": 64, "mean": 0.5, "std": 0.25}}


@pytest.mark.parametrize("image_auc_better", [False, True])
def test_a_measured_finding_is_kept_only_where_validation_says_it_beats_the_image(monkeypatch, image_auc_better):
    from train.calibration import fit_measured_findings

    rng = np.random.default_rng(1)
    train = [_labelled(i, i % 4 == 0, "nih:other", "train") for i in range(40)]
    train += [_labelled(100 + i, False, "nih:muhammedtalo/COVID-19", "train") for i in range(20)]  # not fitted on
    val = [_labelled(i, i % 3 == 0, "nih:other", "val") for i in range(30)] + [_labelled(99, True, "nih:other", "val")]
    k = FINDING_NAMES.index("Cardiomegaly")
    ratios = {str(i.path): (0.6 if i.labels[k] else 0.45) + rng.normal(0, 0.08) for i in train + val}
    ratios.pop(str(val[-1].path))  # one validation image the detector cannot measure
    config = _measured_setup(monkeypatch, ratios)
    head = np.full((len(val), len(FINDING_NAMES)), 0.3)
    truth = np.array([i.labels[k] for i in val])
    head[:, k] = truth if image_auc_better else rng.random(len(val))
    scores = {"head": head.copy()}
    fits, record = fit_measured_findings(config, train, val, scores, list(FINDING_NAMES), "cpu")
    entry = record["Cardiomegaly"]
    assert entry["fit_images"] == 40 and entry["fit_positives"] == 10  # DarkCovidNet left out
    assert entry["val_images_measured"] == len(val) - 1
    if image_auc_better:  # a perfect head: the ratio (AUC < 1 with noise) is not used
        assert fits == {} and not entry["kept"]
        assert np.array_equal(scores["head"], head)
    else:
        assert fits["Cardiomegaly"]["measure"] == "cardiothoracic_ratio" and fits["Cardiomegaly"]["scale"] > 0
        assert entry["val_auc_measured"] > entry["val_auc_image_by_mode"]["head"]
        assert not np.array_equal(scores["head"][:-1, k], head[:-1, k])  # replaced where measured
        assert scores["head"][-1, k] == head[-1, k]  # kept where not
        assert np.array_equal(np.delete(scores["head"], k, axis=1), np.delete(head, k, axis=1))


def test_validation_with_few_positives_does_not_overrule_a_measured_finding(monkeypatch):
    """Three validation positives: one image decides an AUC, so the measurement stays."""
    from train.calibration import fit_measured_findings

    k = FINDING_NAMES.index("Cardiomegaly")
    train = [_labelled(i, i % 4 == 0, "nih:other", "train") for i in range(40)]
    val = [_labelled(i, i % 10 == 0, "nih:other", "val") for i in range(30)]
    ratios = {str(i.path): (0.6 if i.labels[k] else 0.45) + 0.01 * (n % 7) for n, i in enumerate(train + val)}
    ratios[str(val[0].path)] = 0.3  # a positive the ratio misses
    config = _measured_setup(monkeypatch, ratios)
    head = np.full((len(val), len(FINDING_NAMES)), 0.3)
    head[:, k] = [i.labels[k] for i in val]  # a perfect head
    fits, record = fit_measured_findings(config, train, val, {"head": head}, list(FINDING_NAMES), "cpu")
    entry = record["Cardiomegaly"]
    assert entry["val_positives"] == 3 and not entry["validation_decides"]
    assert entry["val_auc_measured"] < entry["val_auc_image_by_mode"]["head"] == 1.0
    assert entry["kept"] and fits["Cardiomegaly"]["measure"] == "cardiothoracic_ratio"


def test_contrastive_loss_is_open_clips_clip_loss_in_one_process():
    """Equal to open_clip's ClipLoss() (world_size 1), value and gradients; open_clip stays
    installed for this test only."""
    clip_loss = pytest.importorskip("open_clip.loss").ClipLoss()
    generator = torch.Generator().manual_seed(0)
    image, text = (F.normalize(torch.randn(6, 32, generator=generator), dim=-1).requires_grad_() for _ in range(2))
    scale = torch.tensor(14.3, requires_grad=True)
    ours = contrastive_loss(image, text, scale)
    ours_grads = torch.autograd.grad(ours, (image, text, scale))
    expected = clip_loss(image, text, scale)
    expected_grads = torch.autograd.grad(expected, (image, text, scale))
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)
    for a, b in zip(ours_grads, expected_grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_contrastive_loss_trains_the_classifier_on_a_tiny_batch():
    torch.manual_seed(0)
    model = ClipClassifier(ClipClassifierConfig.tiny(60))
    images = torch.randn(8, 1, 64, 64)
    texts = torch.randint(4, 60, (8, 9), generator=torch.Generator().manual_seed(0))
    texts[:, 0], texts[:, -1] = 1, 2
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(25):
        out = model(images, texts)
        loss = contrastive_loss(out.image_embeds, out.text_embeds, out.logit_scale)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.5 * losses[0]
    with torch.inference_mode():
        out = model(images, texts)
        retrieved = (out.image_embeds @ out.text_embeds.T).argmax(dim=1)
    assert (retrieved == torch.arange(8)).float().mean() >= 0.75


def test_without_a_trained_detector_measured_findings_stay_with_the_image_classifier(monkeypatch):
    import train.calibration as calibration

    monkeypatch.setattr(calibration, "_trained_detector", lambda config, device: None)
    head = np.full((3, len(FINDING_NAMES)), 0.3)
    fits, record = calibration.fit_measured_findings({}, [], [], {"head": head.copy()}, list(FINDING_NAMES), "cpu")
    assert fits == {} and record["Cardiomegaly"] == {"measure": "cardiothoracic_ratio", "kept": False,
                                                     "why": "no trained detector"}


@pytest.mark.parametrize("trains_backbone", [True, False])
def test_detached_alignment_leaves_the_backbone_to_the_labels(trains_backbone):
    """contrastive_trains_backbone=False: the image-text alignment still trains its projection and
    text tower, but only the finding head's loss reaches the backbone."""
    from train.tasks.clip_task import ClipTrainModule

    torch.manual_seed(0)
    classifier = ClipClassifier(ClipClassifierConfig.tiny(60))
    images = torch.randn(4, 1, 64, 64)
    texts = torch.randint(4, 60, (4, 9), generator=torch.Generator().manual_seed(0))
    texts[:, 0], texts[:, -1] = 1, 2
    labels = torch.zeros(4, len(FINDING_NAMES))
    module = ClipTrainModule(classifier, head_weight=0.0, contrastive_weight=1.0,
                             contrastive_trains_backbone=trains_backbone)
    total, parts = module(images, texts, labels, torch.ones_like(labels))
    total.backward()
    backbone_grads = [p.grad for p in classifier.backbone.parameters() if p.requires_grad]
    assert parts["contrastive"] > 0
    assert classifier.image_projection.weight.grad.abs().sum() > 0
    assert any(p.grad.abs().sum() > 0 for p in classifier.text.parameters() if p.grad is not None)
    reached = any(g is not None and g.abs().sum() > 0 for g in backbone_grads)
    assert reached == trains_backbone
