"""The Draft contract survives JSON exactly and refuses malformed input."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from rrg_desk.reports.draft import (
    DRAFT_FORMAT_VERSION, Draft, DraftFormatError, FindingResult, RegionResult, Sentence, SentenceOrigin,
)
from rrg_desk.reports.document import ReportSentence


def _draft() -> Draft:
    rng = np.random.default_rng(0)
    return Draft(
        study_uid="1.2.826.0.1.3680043.8.498.1",
        regions=[RegionResult("right_lung", (10.5, 20.0, 200.25, 400.0), 0.93, True, 0.12, 0),
                 RegionResult("heart", (150.0, 200.0, 330.0, 380.0), 0.0, False, 0.71, 0),
                 RegionResult("whole_image", (0.0, 0.0, 512.0, 420.0), 1.0, True, 0.3, 1)],
        findings=[FindingResult("Cardiomegaly", 0.71, 0.5), FindingResult("Pneumothorax", 0.04, 0.3)],
        sentences=[Sentence("The heart is enlarged.", "heart", rng.random((8, 8), dtype=np.float32)),
                   Sentence("No pneumothorax.", "whole_image", None, image_index=1, accepted=True),
                   Sentence("Stable since prior.", "whole_image", origin="radiologist")],
        findings_text="The heart is enlarged. No pneumothorax.", impression_text="Cardiomegaly.",
        bundle_id="rrg-abc", device="cpu", settings={"beam_size": 3, "max_len": 40},
        timings_ms={"detector": 41.5, "generator": 300.0})


def test_json_round_trip_is_exact():
    draft = _draft()
    text = json.dumps(draft.to_dict())
    restored = Draft.from_dict(json.loads(text))
    assert restored == draft
    heatmap = restored.sentences[0].heatmap
    assert heatmap.dtype == np.float32 and np.array_equal(heatmap, draft.sentences[0].heatmap)
    assert restored.to_dict() == draft.to_dict()
    assert json.loads(text)["format_version"] == DRAFT_FORMAT_VERSION


def test_changed_heatmap_or_text_breaks_equality():
    draft, other = _draft(), _draft()
    other.sentences[0].heatmap[0, 0] += 0.5
    assert draft != other
    other = _draft()
    other.sentences[1].text = "Small pneumothorax."
    assert draft != other


def test_lookups():
    draft = _draft()
    assert [s.text for s in draft.sentences_for_region("whole_image")] == ["No pneumothorax.", "Stable since prior."]
    assert draft.region("whole_image", image_index=1).score == 1.0
    assert draft.region("whole_image", image_index=0) is None
    assert [f.name for f in draft.positive_findings()] == ["Cardiomegaly"]


def test_malformed_drafts_are_refused():
    good = _draft().to_dict()
    with pytest.raises(DraftFormatError, match="format_version"):
        Draft.from_dict(good | {"format_version": 99})
    with pytest.raises(DraftFormatError):
        Draft.from_dict({k: v for k, v in good.items() if k != "study_uid"})
    with pytest.raises(DraftFormatError):
        Draft.from_dict(good | {"regions": [good["regions"][0] | {"box": [1, 2, 3]}]})
    with pytest.raises(DraftFormatError, match="origin"):
        Draft.from_dict(good | {"sentences": [good["sentences"][1] | {"origin": "ai"}]})
    with pytest.raises(DraftFormatError, match="2-D"):
        Sentence("x", "heart", heatmap=np.zeros(4, np.float32))


def test_sentence_origins_are_stored_as_the_same_words():
    assert [o.value for o in SentenceOrigin] == ["model", "radiologist"]
    read = Sentence.from_dict({"text": "x", "region": "heart", "origin": "radiologist"})
    assert read.origin is SentenceOrigin.RADIOLOGIST
    assert json.loads(json.dumps(read.to_dict()))["origin"] == "radiologist"
    typed = ReportSentence.from_dict({"text": "x", "origin": "model"})
    assert typed.origin is SentenceOrigin.MODEL and json.dumps(typed.to_dict()["origin"]) == '"model"'


def test_minimal_draft_uses_defaults():
    draft = Draft.from_dict({"study_uid": "s1"})
    assert draft == Draft("s1") and draft.sentences == [] and draft.device == "cpu"


_finite = st.floats(0, 1, width=32)


@settings(max_examples=30, deadline=None)
@given(text=st.text(max_size=40), values=st.lists(_finite, min_size=6, max_size=6),
       box=st.tuples(*[st.floats(-1e4, 1e4, allow_nan=False)] * 4), accepted=st.booleans())
def test_round_trip_property(text, values, box, accepted):
    sentence = Sentence(text, "heart", np.array(values, np.float32).reshape(2, 3), accepted=accepted)
    draft = Draft("uid", regions=[RegionResult("heart", box, 0.5, accepted, 0.25)], sentences=[sentence])
    assert Draft.from_dict(json.loads(json.dumps(draft.to_dict()))) == draft


def test_no_finding_is_called_only_when_no_pathology_is():
    from rrg_desk.reports.draft import FindingResult, called_present

    normal = [FindingResult("No Finding", 0.7, 0.3), FindingResult("Pleural Effusion", 0.1, 0.2)]
    assert called_present(normal) == {"No Finding"}
    both = [FindingResult("No Finding", 0.7, 0.3), FindingResult("Pleural Effusion", 0.4, 0.2)]
    assert called_present(both) == {"Pleural Effusion"}
    neither = [FindingResult("No Finding", 0.1, 0.3), FindingResult("Pleural Effusion", 0.1, 0.2)]
    assert called_present(neither) == set()
