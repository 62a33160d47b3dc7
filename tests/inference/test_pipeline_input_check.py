"""Drafting runs the input check first: refusals stop it unless draft_anyway; regions are only
drawn on a frontal view; the learned score plugs in through the classifier and the card."""
from __future__ import annotations

import dataclasses

import numpy as np
import pydicom
import pytest
import torch

from rrg_desk.imaging import ViewPosition, load_studies
from rrg_desk.imaging.input_check import LearnedThresholds, NotChestByModelError, WrongModalityError
from rrg_desk.inference.pipeline import DraftPipeline
from rrg_desk.inference.request import DraftError, DraftSettings
from rrg_desk.paths import samples_dir
from tests.fixtures_dicom import write_dicom, write_png


@pytest.fixture(scope="module")
def chest_pixels() -> np.ndarray:
    return pydicom.dcmread(samples_dir() / "study1" / "01_pa.dcm").pixel_array


@pytest.fixture
def pipeline(tiny_bundle):
    return DraftPipeline(tiny_bundle, device="cpu")


def _study(*paths):
    studies, errors = load_studies(list(paths))
    assert not errors and len(studies) == 1
    return studies[0]


def _two_views(tmp_path, pixels, frontal: str, lateral: str = "LL", modality: str = "DX"):
    uid = pydicom.uid.generate_uid()
    return _study(write_dicom(tmp_path / "a.dcm", pixels, bits_stored=12, view=frontal, study_uid=uid,
                              modality=modality),
                  write_dicom(tmp_path / "b.dcm", pixels, bits_stored=12, view=lateral, study_uid=uid))


def test_a_refused_image_stops_the_draft_before_the_models_run(pipeline, tmp_path, chest_pixels):
    study = _study(write_dicom(tmp_path / "mr.dcm", chest_pixels, bits_stored=12, modality="MR"))
    stages = []
    with pytest.raises(WrongModalityError) as caught:
        pipeline.draft(study, progress=lambda stage, i, n: stages.append(stage))
    assert caught.value.user_message.startswith("mr.dcm: ") and "detect" not in stages


def test_one_refused_view_refuses_the_study(pipeline, tmp_path, chest_pixels):
    study = _two_views(tmp_path, chest_pixels, frontal="PA", modality="CT")
    with pytest.raises(WrongModalityError):
        pipeline.draft(study)


def test_draft_anyway_drafts_and_says_what_it_overrode(pipeline, tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (256, 256), dtype=np.uint8)
    study = _study(write_png(tmp_path / "noise.png", noise))
    draft = pipeline.draft(study, DraftSettings(draft_anyway=True))
    assert draft.settings["draft_anyway"] is True
    assert len(draft.settings["refused_inputs"]) == 1 and "noise" in draft.settings["refused_inputs"][0]
    assert len(draft.findings) == 14 and draft.regions


def test_a_passing_study_records_no_refusal(pipeline):
    draft = pipeline.draft(_study(samples_dir() / "study1"))
    assert draft.settings["draft_anyway"] is False and "refused_inputs" not in draft.settings


def test_a_lateral_only_study_gets_findings_but_no_regions(pipeline, tmp_path, chest_pixels):
    study = _study(write_dicom(tmp_path / "lat.dcm", chest_pixels, bits_stored=12, view="LL"))
    assert study.frontal is None and study.images[0].view is ViewPosition.LATERAL
    stages = []
    draft = pipeline.draft(study, progress=lambda stage, i, n: stages.append(stage))
    assert draft.regions == [] and draft.sentences == [] and draft.findings_text == ""
    assert len(draft.findings) == 14 and draft.impression_text
    assert "detect" not in stages and "generate" not in stages
    with pytest.raises(DraftError, match="frontal"):
        pipeline.describe_region(study, (10.0, 10.0, 100.0, 100.0))


def test_a_frontal_and_lateral_study_draws_regions_on_the_frontal(pipeline, tmp_path, chest_pixels):
    study = _two_views(tmp_path, chest_pixels[:, :-40], frontal="PA")  # the views differ in width
    draft = pipeline.draft(study)
    frontal = study.frontal
    assert frontal.view is ViewPosition.PA and draft.regions
    assert all(r.image_index == 0 for r in draft.regions)
    assert max(r.box[2] for r in draft.regions) <= frontal.width + 1


def _learned_head(monkeypatch, pipeline, p_chest: float, p_lateral: float) -> list:
    """Stand in for the lead's classifier head and card section (the plug-in contract)."""
    calls = []

    def input_check_scores(features):  # backbone features [V, C] -> (p_chest [V], p_lateral [V])
        calls.append(tuple(features.shape))
        count = features.shape[0]
        return torch.full((count,), p_chest), torch.full((count,), p_lateral)

    monkeypatch.setattr(pipeline.bundle.classifier, "input_check_scores", input_check_scores, raising=False)
    card = dataclasses.replace(pipeline.bundle.card, input_check=LearnedThresholds(p_chest=0.5, p_lateral=0.5))
    monkeypatch.setattr(pipeline.bundle, "card", card)
    return calls


def test_a_learned_score_below_the_card_threshold_refuses(pipeline, monkeypatch):
    calls = _learned_head(monkeypatch, pipeline, p_chest=0.1, p_lateral=0.0)
    study = _study(samples_dir() / "study2")
    with pytest.raises(NotChestByModelError) as caught:
        pipeline.draft(study)
    width = pipeline.bundle.classifier.config.feature_dim  # the backbone features classification reuses
    assert calls == [(1, width)] and "0.10" in caught.value.user_message


def test_a_learned_lateral_gets_no_regions(pipeline, monkeypatch, tmp_path, chest_pixels):
    _learned_head(monkeypatch, pipeline, p_chest=0.99, p_lateral=0.95)
    study = _study(write_png(tmp_path / "0.png", (chest_pixels >> 4).astype(np.uint8)))
    assert study.images[0].view is ViewPosition.UNKNOWN  # the header (file name) says nothing
    draft = pipeline.draft(study)
    assert draft.regions == [] and draft.sentences == []
