from __future__ import annotations

import json

import pytest

from rrg_desk.reports.document import DocumentError, ReportDocument, ReportSentence, normalise_model_sentence
from tests.reports.synthetic import make_draft


@pytest.fixture
def document() -> ReportDocument:
    return ReportDocument.from_draft(make_draft("1.2.3"))


def test_from_draft_keeps_order_regions_and_marks_model_text(document):
    assert [s.text for s in document.findings] == ["The heart is enlarged.", "The lungs are clear."]
    assert [s.region for s in document.findings] == ["heart", "right_lung"]
    assert [s.text for s in document.impression] == ["Cardiomegaly."]
    assert all(s.origin == "model" and s.unreviewed for s in document.sentences())
    assert document.findings_text() == "The heart is enlarged. The lungs are clear."
    assert document.bundle_id == "test-bundle"


def test_draft_sentence_gives_the_heatmap(document):
    first = document.findings[0]
    assert document.draft_sentence(first.id).heatmap.shape == (8, 8)
    assert document.draft_sentence(document.impression[0].id) is None
    assert document.sentences_for_region("right_lung") == [document.findings[1]]


def test_normalise_model_sentence():
    assert normalise_model_sentence("  the heart   is normal ") == "The heart is normal."
    assert normalise_model_sentence("Clear!") == "Clear!"
    assert normalise_model_sentence("") == ""


def test_accept_reject_accept_all(document):
    first, second = document.findings
    document.accept(first.id)
    assert first.accepted and not first.unreviewed
    assert document.unreviewed_model_sentences() == [second, document.impression[0]]
    document.reject(second.id)
    assert document.findings == [first]
    assert sorted(document.accept_all()) == [document.impression[0].id]
    assert document.unreviewed_model_sentences() == []
    with pytest.raises(DocumentError):
        document.accept("no-such-id")


def test_unchanged_text_keeps_provenance_and_ids(document):
    ids = [s.id for s in document.findings]
    document.replace_section_text("findings", "The heart is enlarged.  The lungs are clear.")
    assert [s.id for s in document.findings] == ids
    assert all(s.unreviewed for s in document.findings)


def test_moved_sentence_keeps_its_identity(document):
    heart, lungs = document.findings
    document.replace_section_text("findings", "The lungs are clear. The heart is enlarged.")
    assert [s.id for s in document.findings] == [lungs.id, heart.id]


def test_edited_model_sentence_stays_linked_and_counts_as_reviewed(document):
    heart = document.findings[0]
    document.replace_section_text("findings", "The heart is mildly enlarged. The lungs are clear.")
    edited = document.findings[0]
    assert edited.id == heart.id and edited.origin == "model" and edited.region == "heart"
    assert edited.edited and not edited.unreviewed
    assert edited.model_text == "The heart is enlarged."


def test_new_and_rewritten_sentences_are_the_radiologists(document):
    document.replace_section_text(
        "findings", "There is a small left pleural effusion. The heart is enlarged. The lungs are clear.")
    new = document.findings[0]
    assert new.origin == "radiologist" and not new.unreviewed
    assert new.region is not None and "left" in new.region  # linked to a region by the lexicon
    document.replace_section_text("impression", "Completely different wording about bones.")
    assert [s.origin for s in document.impression] == ["radiologist"]


def test_clearing_a_section_removes_its_sentences(document):
    document.replace_section_text("impression", "")
    assert document.impression == [] and document.impression_text() == ""
    with pytest.raises(DocumentError):
        document.replace_section_text("history", "x")


def test_add_sentence_and_word_count(document):
    assert document.word_count() == 9  # 4 + 4 + 1
    document.add_sentence("findings", ReportSentence("No pneumothorax."), index=0)
    assert document.findings[0].text == "No pneumothorax."
    assert document.word_count() == 11


def test_json_round_trip_without_the_draft(document):
    document.accept(document.findings[0].id)
    document.replace_section_text("impression", "Mild cardiomegaly.")
    data = json.loads(json.dumps(document.to_dict()))
    assert "heatmap" not in json.dumps(data)  # autosave stays small: heatmaps are stored once
    restored = ReportDocument.from_dict(data, draft=document.draft)
    assert restored.to_dict() == document.to_dict()
    assert restored.findings[0].accepted and restored.impression[0].edited
    with pytest.raises(DocumentError):
        ReportDocument.from_dict({**data, "format_version": 99})
    with pytest.raises(DocumentError):
        ReportDocument.from_dict({"findings": []})
