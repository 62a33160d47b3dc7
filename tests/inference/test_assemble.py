from rrg_desk.inference.assemble import (NORMAL_IMPRESSION, impression_from_findings, merge_duplicate_sentences,
                                         report_order, tidy_sentence)
from rrg_desk.reports.draft import FindingResult, Sentence


def test_near_duplicates_across_regions_are_merged():
    sentences = [Sentence("The lungs are clear.", "right_lung"), Sentence("the lungs are clear", "left_lung"),
                 Sentence("Small left pleural effusion.", "left_costophrenic_angle")]
    merged = merge_duplicate_sentences(sentences)
    assert [s.region for s in merged] == ["right_lung", "left_costophrenic_angle"]


def test_sentences_follow_dictation_order():
    sentences = [Sentence("No pneumothorax.", "whole_image"), Sentence("Lungs clear.", "left_lung"),
                 Sentence("Heart size normal.", "heart")]
    assert [s.region for s in report_order(sentences)] == ["heart", "left_lung", "whole_image"]


def test_impression_states_only_positive_findings():
    findings = [FindingResult("Cardiomegaly", 0.9, 0.5), FindingResult("Pleural Effusion", 0.2, 0.5),
                FindingResult("Support Devices", 0.7, 0.5)]
    text = impression_from_findings(findings)
    assert "Cardiomegaly." in text and "effusion" not in text.lower() and "Support devices" in text
    assert impression_from_findings([FindingResult("Edema", 0.1, 0.5)]) == NORMAL_IMPRESSION


def test_figure_pointers_from_case_notes_are_dropped():
    assert tidy_sentence("Bilateral consolidation in the lower lobes (fig.") == "Bilateral consolidation in the lower lobes."
    assert tidy_sentence("Opacity in the right base (Figure 2b) is new.") == "Opacity in the right base is new."
    assert tidy_sentence("No pleural effusion.") == "No pleural effusion."
