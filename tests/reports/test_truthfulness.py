from __future__ import annotations

from rrg_desk.models.findings import FINDING_NAMES
from rrg_desk.reports.document import ReportDocument
from rrg_desk.reports.draft import FindingResult
from rrg_desk.reports.truthfulness import (
    ASSERTED_BELOW, NEGATED_OR_OMITTED_ABOVE, UNREVIEWED, Flag, check_report, unreviewed_flags,
)
from tests.reports.synthetic import make_draft


def _findings(**probabilities: float) -> list[FindingResult]:
    probs = {name: 0.1 for name in FINDING_NAMES}
    probs["No Finding"] = 0.2
    probs.update({k.replace("_", " "): v for k, v in probabilities.items()})
    return [FindingResult(name, probs[name], 0.5) for name in FINDING_NAMES]


def _typed(findings: str, impression: str = "") -> ReportDocument:
    document = ReportDocument(study_uid="1.2.3")
    document.replace_section_text("findings", findings)
    document.replace_section_text("impression", impression)
    return document


def test_a_text_asserts_a_finding_the_classifier_scores_low():
    document = _typed("There is a large right pleural effusion. The heart is enlarged.", "Cardiomegaly.")
    flags = check_report(document, _findings(Cardiomegaly=0.9))
    assert [(f.kind, f.finding) for f in flags] == [(ASSERTED_BELOW, "Pleural Effusion")]
    flag = flags[0]
    assert flag.sentence_id == document.findings[0].id
    assert "pleural effusion" in flag.message and "10%" in flag.message and "50%" in flag.message


def test_a_uncertain_mention_counts_as_an_assertion_worded_as_such():
    document = _typed("Possible small pneumothorax at the left apex.")
    flags = check_report(document, _findings())
    assert [(f.kind, f.finding) for f in flags] == [(ASSERTED_BELOW, "Pneumothorax")]
    assert "raises the possibility" in flags[0].message


def test_b_text_negates_a_finding_the_classifier_scores_high():
    document = _typed("No pleural effusion. The heart is enlarged.", "Cardiomegaly.")
    flags = check_report(document, _findings(Cardiomegaly=0.9, Pleural_Effusion=0.85))
    assert [(f.kind, f.finding) for f in flags] == [(NEGATED_OR_OMITTED_ABOVE, "Pleural Effusion")]
    assert flags[0].sentence_id == document.findings[0].id
    assert "says there is none" in flags[0].message and "85%" in flags[0].message


def test_b_text_omits_a_finding_the_classifier_scores_high():
    document = _typed("The lungs are clear.", "No acute cardiopulmonary abnormality.")
    flags = check_report(document, _findings(Cardiomegaly=0.7))
    assert [(f.kind, f.finding, f.sentence_id) for f in flags] == [(NEGATED_OR_OMITTED_ABOVE, "Cardiomegaly", None)]
    assert "does not mention" in flags[0].message


def test_agreeing_report_has_no_flags():
    document = _typed("The heart is enlarged. No pleural effusion.", "Cardiomegaly.")
    assert check_report(document, _findings(Cardiomegaly=0.9)) == []


def test_no_finding_is_never_required_but_a_normal_report_against_the_classifier_is_flagged():
    normal = _typed("The lungs are clear.", "No acute cardiopulmonary abnormality.")
    # classifier: normal study, nothing positive -> no flag
    assert check_report(normal, _findings(No_Finding=0.9)) == []
    # classifier: not normal, but no specific finding -> one No Finding flag
    flags = check_report(normal, _findings(No_Finding=0.2))
    assert [(f.kind, f.finding) for f in flags] == [(ASSERTED_BELOW, "No Finding")]
    # an abnormal report with a normal-looking classifier gets no No Finding flag of its own
    abnormal = _typed("The heart is enlarged.", "Cardiomegaly.")
    flags = check_report(abnormal, _findings(No_Finding=0.9))
    assert [(f.kind, f.finding) for f in flags] == [(ASSERTED_BELOW, "Cardiomegaly")]


def test_c_unreviewed_model_text_until_accepted_or_edited():
    document = ReportDocument.from_draft(make_draft("1.2.3"))
    flags = check_report(document, make_draft("1.2.3").findings)
    assert [f.kind for f in flags] == [UNREVIEWED] * 3
    assert {f.sentence_id for f in flags} == {s.id for s in document.sentences()}
    document.accept(document.findings[0].id)
    document.replace_section_text("findings", "The heart is enlarged. The lungs are clear bilaterally.")
    document.reject(document.impression[0].id)
    remaining = check_report(document, make_draft("1.2.3").findings)
    assert remaining == []  # cardiomegaly asserted and positive, lungs edited, impression gone


def test_flags_without_classifier_findings_only_check_review():
    document = ReportDocument.from_draft(make_draft("1.2.3"))
    assert {f.kind for f in check_report(document, [])} == {UNREVIEWED}


def test_unreviewed_flags_matches_by_identity_not_message():
    flag = Flag(ASSERTED_BELOW, "Edema", "s1", "old wording")
    reworded = Flag(ASSERTED_BELOW, "Edema", "s1", "new wording")
    other = Flag(UNREVIEWED, None, "s2", "x")
    assert unreviewed_flags([reworded, other], [flag]) == [other]
    assert Flag.from_dict(flag.to_dict()) == flag
