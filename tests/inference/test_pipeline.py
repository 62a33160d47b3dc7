import dataclasses

import numpy as np
import pytest
import torch

from rrg_desk.imaging.input_check import LearnedThresholds
from rrg_desk.inference.pipeline import STAGES, DraftPipeline
from rrg_desk.inference.request import CancelToken, DraftCancelled, DraftSettings
from rrg_desk.models.findings import FINDING_NAMES
from rrg_desk.models.regions import REGION_NAMES


def _scripted_generator(pipeline, monkeypatch):
    """A random tiny generator may stop at once; script its tokens to test the plumbing."""
    generator = pipeline.bundle.generator
    tok = pipeline.bundle.tokenizer
    words = [tok.token_to_id(w) for w in ("the", "lungs", "are", "clear", ".")]
    assert None not in words

    def generate_sentences(region_features=None, region_ids=None, **kwargs):
        return [list(words) + [tok.eos_id] for _ in range(len(region_ids))]

    monkeypatch.setattr(generator, "generate_sentences", generate_sentences)


def _classifier_says(pipeline, monkeypatch, **positive):
    """Fix the classifier's probabilities: 0.05 everywhere, the named findings as given."""
    probs = torch.full((len(FINDING_NAMES),), 0.05)
    for name, p in positive.items():
        probs[FINDING_NAMES.index(name.replace("_", " "))] = p
    monkeypatch.setattr(pipeline, "_classify", lambda prepared, measured: probs.clone())


def test_draft_ties_every_sentence_to_a_region_and_heatmap(tiny_bundle, study, monkeypatch):
    pipeline = DraftPipeline(tiny_bundle, device="cpu")
    _scripted_generator(pipeline, monkeypatch)
    _classifier_says(pipeline, monkeypatch)
    draft = pipeline.draft(study)
    frontal = study.frontal
    assert [r.name for r in draft.regions] == list(REGION_NAMES)
    for region in draft.regions:
        x0, y0, x1, y1 = region.box
        assert -1 <= x0 <= x1 <= frontal.width + 1 and -1 <= y0 <= y1 <= frontal.height + 1
    whole = draft.region("whole_image")
    assert whole.box == pytest.approx((0, 0, frontal.width, frontal.height), abs=1.0)
    assert [f.name for f in draft.findings] == list(FINDING_NAMES)
    assert all(0.0 <= f.probability <= 1.0 for f in draft.findings)
    # the generator's sentence once (duplicates merged), then a normal statement for each silent area
    assert [s.text for s in draft.sentences] == ["The heart size is normal.", "The lungs are clear.",
                                                 "There is no pleural effusion or pneumothorax."]
    selected = {r.name for r in draft.regions if r.selected}
    for sentence in draft.sentences:
        assert sentence.region in selected
        assert sentence.heatmap is not None and sentence.heatmap.ndim == 2
        assert np.isfinite(sentence.heatmap).all() and sentence.heatmap.max() == pytest.approx(1.0)
    assert draft.impression_text
    assert set(STAGES) - {"heatmaps"} <= set(draft.timings_ms)


def test_one_positive_finding_is_stated_once_and_nothing_else_positive(tiny_bundle, study, monkeypatch):
    """The generator (scripted) asserts edema in every region; the classifier sees only an effusion."""
    pipeline = DraftPipeline(tiny_bundle, device="cpu")
    tok = pipeline.bundle.tokenizer
    edema = [tok.token_to_id(w) for w in ("there", "is", "pulmonary", "edema", ".")]
    assert None not in edema
    monkeypatch.setattr(pipeline.bundle.generator, "generate_sentences",
                        lambda region_features=None, region_ids=None, **kw: [edema + [tok.eos_id]] * len(region_ids))
    _classifier_says(pipeline, monkeypatch, Pleural_Effusion=0.9)
    draft = pipeline.draft(study)
    from rrg_desk.inference.consistency import contradictions, read_sentence

    readings = [read_sentence(s.text) for s in draft.sentences]
    assert [r.asserted for r in readings if r.asserted] == [frozenset({"Pleural Effusion"})]
    effusion = next(s for s, r in zip(draft.sentences, readings) if r.asserted)
    assert effusion.region in ("right_costophrenic_angle", "left_costophrenic_angle")
    assert draft.region(effusion.region).selected and effusion.heatmap is not None
    assert "effusion" in draft.impression_text.lower()
    assert contradictions(draft.findings_text, draft.impression_text, draft.findings) == 0


def test_no_positive_finding_gives_a_normal_impression_and_no_assertion(tiny_bundle, study, monkeypatch):
    pipeline = DraftPipeline(tiny_bundle, device="cpu")
    _classifier_says(pipeline, monkeypatch)
    draft = pipeline.draft(study)
    from rrg_desk.inference.consistency import contradictions, read_sentence

    assert all(not read_sentence(s.text).asserted for s in draft.sentences)
    assert draft.impression_text == "No acute cardiopulmonary abnormality."
    assert contradictions(draft.findings_text, draft.impression_text, draft.findings) == 0


def test_draft_is_deterministic(tiny_bundle, study):
    pipeline = DraftPipeline(tiny_bundle, device="cpu")
    a, b = pipeline.draft(study), pipeline.draft(study)
    assert [s.text for s in a.sentences] == [s.text for s in b.sentences]
    assert [f.probability for f in a.findings] == [f.probability for f in b.findings]


def test_progress_reports_stages_in_order(tiny_bundle, study):
    seen = []
    DraftPipeline(tiny_bundle, device="cpu").draft(study, progress=lambda stage, i, n: seen.append(stage))
    order = [s for s in STAGES if s in seen]
    assert seen[: len(order)] == order and seen[0] == "load_models"


def test_cancel_between_stages(tiny_bundle, study):
    token = CancelToken()
    calls = []

    def progress(stage, index, total):
        calls.append(stage)
        if stage == "detect":
            token.cancel()

    with pytest.raises(DraftCancelled):
        DraftPipeline(tiny_bundle, device="cpu").draft(study, cancel=token, progress=progress)
    assert "generate" not in calls


def test_describe_a_drawn_box(tiny_bundle, study):
    frontal = study.frontal
    box = (frontal.width * 0.1, frontal.height * 0.2, frontal.width * 0.45, frontal.height * 0.6)
    sentence = DraftPipeline(tiny_bundle, device="cpu").describe_region(study, box)
    assert sentence.region in REGION_NAMES
    assert sentence.heatmap is not None


def test_selector_threshold_above_one_falls_back_to_whole_image(tiny_bundle, study, monkeypatch):
    pipeline = DraftPipeline(tiny_bundle, device="cpu")
    _classifier_says(pipeline, monkeypatch)  # no positive finding, so no finding sentence in its own region
    draft = pipeline.draft(study, DraftSettings(selector_threshold=1.1))
    from rrg_desk.inference.consistency import NORMAL_STATEMENTS

    normal = {text: region for region, text, _area in NORMAL_STATEMENTS}
    assert {s.region for s in draft.sentences if s.text not in normal} <= {"whole_image"}
    expected = {"whole_image"} | {normal[s.text] for s in draft.sentences if s.text in normal}
    assert {r.name for r in draft.regions if r.selected} == expected


def test_the_input_check_and_the_classifier_share_one_backbone_pass(tiny_bundle, study, monkeypatch):
    pipeline = DraftPipeline(tiny_bundle, device="cpu")
    card = dataclasses.replace(pipeline.bundle.card, input_check=LearnedThresholds(p_chest=0.0, p_lateral=1.1))
    monkeypatch.setattr(pipeline.bundle, "card", card)
    classifier = pipeline.bundle.classifier
    passes = []
    original = classifier.image_features
    monkeypatch.setattr(classifier, "image_features", lambda images: passes.append(len(images)) or original(images))
    draft = pipeline.draft(study, DraftSettings(finding_heatmaps=False))
    assert sum(passes) == len(study.images)  # once per image, though both the gate and the findings read it
    assert len(draft.findings) == len(FINDING_NAMES)
    assert pipeline._draft_memo is None  # nothing kept after the draft


@pytest.mark.parametrize("form", ["thresholded", "probabilities"])
def test_the_generator_gets_the_clues_in_the_form_its_card_names(tiny_bundle, study, monkeypatch, form):
    """TRRG clues: a generator trained on report labels ("thresholded") sees 1 exactly for the
    findings the classifier calls positive and 0 elsewhere; an older one sees probabilities."""
    pipeline = DraftPipeline(tiny_bundle, device="cpu")
    card = pipeline.bundle.card
    monkeypatch.setattr(pipeline.bundle, "card",
                        dataclasses.replace(card, generation=dataclasses.replace(card.generation, clues=form)))
    _scripted_generator(pipeline, monkeypatch)
    _classifier_says(pipeline, monkeypatch, Pleural_Effusion=0.9, Edema=0.3)
    monkeypatch.setitem(pipeline.bundle.thresholds, "Edema", 0.5)
    seen = []
    original = pipeline.bundle.generator.generate_sentences

    def recording(**kwargs):
        seen.append(kwargs["finding_probs"].reshape(-1).clone())
        return original(**kwargs)

    monkeypatch.setattr(pipeline.bundle.generator, "generate_sentences", recording)
    pipeline.draft(study)
    assert seen
    clues = seen[0]
    effusion, edema = FINDING_NAMES.index("Pleural Effusion"), FINDING_NAMES.index("Edema")
    if form == "thresholded":
        expected = torch.zeros(len(FINDING_NAMES))
        expected[effusion] = 1.0
        assert torch.equal(clues, expected)
    else:
        assert clues[effusion] == pytest.approx(0.9) and clues[edema] == pytest.approx(0.3)


def test_a_measured_finding_takes_its_probability_from_the_frontal_boxes(tiny_bundle, study, monkeypatch):
    """A card that scores Cardiomegaly from the cardiothoracic ratio: the draft's probability is
    calibrate(sigmoid(scale * ratio + bias)) of the regions it shows, and says so; the other
    findings stay the image classifier's."""
    from rrg_desk.models.classify import calibrate
    from rrg_desk.models.measurements import CARDIOTHORACIC_RATIO, cardiothoracic_ratio

    pipeline = DraftPipeline(tiny_bundle, device="cpu")
    monkeypatch.setattr(pipeline.bundle.detector.config, "min_detection_score", 0.0)  # every region found
    before = {f.name: f.probability for f in pipeline.draft(study, DraftSettings(finding_heatmaps=False)).findings}
    fit = {"measure": CARDIOTHORACIC_RATIO, "scale": 12.0, "bias": -6.0}
    card = pipeline.bundle.card
    classification = dataclasses.replace(card.classification, measurements={"Cardiomegaly": fit})
    monkeypatch.setattr(pipeline.bundle, "card", dataclasses.replace(card, classification=classification))
    draft = pipeline.draft(study, DraftSettings(finding_heatmaps=False))
    ratio = cardiothoracic_ratio({r.name: r.box for r in draft.regions})
    expected = calibrate(torch.tensor([1 / (1 + np.exp(-(12.0 * ratio - 6.0)))]), ["Cardiomegaly"],
                         classification.calibration)
    finding = {f.name: f for f in draft.findings}
    assert finding["Cardiomegaly"].probability == pytest.approx(float(expected[0]), abs=1e-5)
    assert finding["Cardiomegaly"].measurement == (CARDIOTHORACIC_RATIO, pytest.approx(ratio, abs=1e-4))
    assert finding["Cardiomegaly"].to_dict()["measurement"]["name"] == CARDIOTHORACIC_RATIO
    others = {n: f.probability for n, f in finding.items() if n != "Cardiomegaly"}
    assert others == pytest.approx({n: p for n, p in before.items() if n != "Cardiomegaly"})
    assert all(f.measurement is None for n, f in finding.items() if n != "Cardiomegaly")


def test_no_measurement_without_the_regions_it_needs(tiny_bundle, study, monkeypatch):
    """Nothing found (only fall-back boxes): the measured finding keeps the image classifier's score."""
    from rrg_desk.models.measurements import CARDIOTHORACIC_RATIO

    pipeline = DraftPipeline(tiny_bundle, device="cpu")
    monkeypatch.setattr(pipeline.bundle.detector.config, "min_detection_score", 1.1)  # nothing found
    before = pipeline.draft(study, DraftSettings(finding_heatmaps=False)).findings
    card = pipeline.bundle.card
    classification = dataclasses.replace(card.classification, measurements={
        "Cardiomegaly": {"measure": CARDIOTHORACIC_RATIO, "scale": 12.0, "bias": -6.0}})
    monkeypatch.setattr(pipeline.bundle, "card", dataclasses.replace(card, classification=classification))
    after = pipeline.draft(study, DraftSettings(finding_heatmaps=False)).findings
    assert [f.probability for f in after] == pytest.approx([f.probability for f in before])
    assert all(f.measurement is None for f in after)
