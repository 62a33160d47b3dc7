"""Draft text bound to the classifier's decisions: crafted drafts, read by the labeler."""
from __future__ import annotations

from rrg_desk.inference.assemble import NORMAL_IMPRESSION, impression_from_findings
from rrg_desk.inference.consistency import (FINDING_SENTENCES, bind_to_findings, contradictions, read_sentence,
                                            states_only)
from rrg_desk.models.findings import FINDING_NAMES
from rrg_desk.reports.draft import FindingResult, Sentence


def _findings(**probabilities) -> list[FindingResult]:
    named = {name.replace(" ", "_"): name for name in FINDING_NAMES}
    values = {named[k]: v for k, v in probabilities.items()}
    return [FindingResult(name, values.get(name, 0.05), 0.5) for name in FINDING_NAMES]


def _sentences(*texts: str) -> list[Sentence]:
    return [Sentence(text=t, region="whole_image") for t in texts]


def test_unsupported_and_denied_findings_and_empty_sentences_are_dropped():
    findings = _findings(Pleural_Effusion=0.9)
    kept, missing = bind_to_findings(_sentences(
        "The chest x-ray revealed bilateral pulmonary edema.",   # edema below threshold
        "Chest x-ray images and chest x-ray.",                    # content-free
        "There is a left-sided-sided opacity.",                   # repeated word, opacity unsupported
        "No pleural effusion.",                                   # denies a positive finding
        "The heart size is normal.",
        "There is a small right pleural effusion.",
        "Small bilateral pleural effusions are present.",         # second sentence for the same finding
        "No acute cardiopulmonary abnormality.",                  # normal beside a positive finding
    ), findings)
    assert [s.text for s in kept] == ["The heart size is normal.", "There is a small right pleural effusion."]
    assert missing == []


def test_a_positive_finding_no_sentence_states_is_reported_missing_in_probability_order():
    findings = _findings(Cardiomegaly=0.7, Consolidation=0.95)
    kept, missing = bind_to_findings(_sentences("The lungs are clear of pneumothorax."), findings)
    assert missing == ["Consolidation", "Cardiomegaly"]


def test_a_normal_study_keeps_normal_sentences_only():
    kept, missing = bind_to_findings(_sentences("The heart is normal in size.", "The lungs are clear.",
                                                "There is a right lower lobe consolidation."), _findings())
    assert [s.text for s in kept] == ["The heart is normal in size.", "The lungs are clear."]
    assert missing == []


def test_every_fallback_sentence_states_its_finding_and_nothing_else():
    for name, text in FINDING_SENTENCES.items():
        assert states_only(text, name, {name}), (name, text, read_sentence(text))


def test_contradiction_count():
    findings = _findings(Pleural_Effusion=0.9)
    assert contradictions("There is a pleural effusion.", "Pleural effusion.", findings) == 0
    assert contradictions("There is a pleural effusion. There is pulmonary edema.", "Pleural effusion.", findings) == 1
    assert contradictions("There is a pleural effusion.", NORMAL_IMPRESSION, findings) == 1
    normal = _findings()
    assert contradictions("The lungs are clear.", impression_from_findings(normal), normal) == 0


def test_impression_never_contradicts_the_bound_findings():
    for probabilities in ({}, {"Pleural_Effusion": 0.9}, {"Edema": 0.8, "Cardiomegaly": 0.6}):
        findings = _findings(**probabilities)
        kept, missing = bind_to_findings(_sentences("The lungs are clear.", "Mild pulmonary edema."), findings)
        text = " ".join([s.text for s in kept] + [FINDING_SENTENCES[m] for m in missing])
        assert contradictions(text, impression_from_findings(findings), findings) == 0, (probabilities, text)


def test_repeated_phrases_and_imaging_words_are_empty():
    assert read_sentence("Chest x-ray images and chest ct images and chest ct images.").repeated_word
    assert read_sentence("Chest CT scan images.").content_free
    assert not read_sentence("The heart and lungs are normal.").repeated_word


def test_a_normal_study_gets_a_statement_for_each_silent_area():
    from rrg_desk.inference.consistency import normal_statements

    added = normal_statements(_sentences("There is no pleural effusion."), _findings())
    assert [text for _region, text in added] == ["The heart size is normal.", "The lungs are clear."]
    with_finding = normal_statements(_sentences(), _findings(Consolidation=0.9))
    assert "The lungs are clear." not in [text for _r, text in with_finding]
    for _region, text in normal_statements([], _findings()):
        assert not read_sentence(text).asserted


def test_a_sentence_with_the_iu_placeholder_is_dropped():
    from rrg_desk.inference.consistency import sentence_problem

    reading = read_sentence("The xxxx are unremarkable.")
    assert reading.placeholder and sentence_problem(reading, set()) is not None
    assert not read_sentence("The osseous structures are unremarkable.").placeholder


def test_case_note_section_labels_and_figure_pointers_are_tidied_away():
    from rrg_desk.inference.assemble import tidy_sentence

    assert tidy_sentence("Imaging notes: bilateral opacities in both lower lobes (fig") == \
        "Bilateral opacities in both lower lobes."
    assert tidy_sentence("The lungs are clear") == "The lungs are clear."


def test_an_abnormality_outside_the_findings_is_not_left_in_a_draft():
    """"calcified granuloma", "hiatal hernia": nothing the classifier assesses can support them."""
    from rrg_desk.inference.consistency import sentence_problem

    for text in ("There is a calcified granuloma in the right lung base.", "There is a small hiatal hernia."):
        reading = read_sentence(text)
        assert reading.other_abnormality and sentence_problem(reading, {"Lung Lesion"}) is not None
    for text in ("The heart size is normal.", "The lungs are well-aerated.", "No pneumothorax or pleural effusion."):
        reading = read_sentence(text)
        assert not reading.other_abnormality and sentence_problem(reading, set()) is None


def test_clear_lungs_cannot_stand_beside_a_lung_finding_and_garbled_sentences_go():
    from rrg_desk.inference.consistency import read_sentence, sentence_problem

    clear = read_sentence("The lungs are otherwise clear.")
    assert clear.clear_lungs
    assert "lungs clear" in sentence_problem(clear, {"Pneumonia"})
    assert sentence_problem(clear, {"Pleural Effusion"}) is None  # the lungs themselves may be clear
    assert sentence_problem(clear, set()) is None
    heart = read_sentence("The heart size is normal.")
    assert not heart.clear_lungs and sentence_problem(heart, {"Pneumonia"}) is None
    garbled = read_sentence('The months, the apperances are that of migrating/(").')
    assert garbled.garbled and sentence_problem(garbled, set()) == "is garbled"
    assert not read_sentence("No pneumothorax (on the AP view).").garbled
