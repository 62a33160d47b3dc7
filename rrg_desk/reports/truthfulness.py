"""TRRG's concern, checked before signing: does the text say what the classifier sees?

The edited report is run through the CheXpert-style labeler and compared with the
classifier's finding probabilities:

(a) "asserted_below_threshold": the text asserts a finding (positive or uncertain mention)
    the classifier scores below its threshold;
(b) "negated_or_omitted_above_threshold": the classifier scores a finding above threshold
    but the text negates it or never mentions it;
(c) "unreviewed_model_text": model sentences the radiologist neither accepted nor edited.

"No Finding" is not a pathology and is handled apart: it is never required in the text
(no (b) flag), and a report that reads as normal (the labeler's No Finding is positive)
gets an (a) flag only when the classifier's No Finding is below threshold *and* no
pathology was already flagged under (b), which would explain the same disagreement.
Flags are advice for the radiologist, not errors: the decision to sign stays theirs.
"""
from __future__ import annotations

from dataclasses import dataclass

from rrg_desk.models.findings import NO_FINDING
from rrg_desk.reports.document import ReportDocument, ReportSentence
from rrg_desk.reports.draft import FindingResult
from rrg_desk.reports.labeler import NEGATIVE, POSITIVE, UNCERTAIN, label_report, label_sentences

ASSERTED_BELOW = "asserted_below_threshold"
NEGATED_OR_OMITTED_ABOVE = "negated_or_omitted_above_threshold"
UNREVIEWED = "unreviewed_model_text"


@dataclass(frozen=True)
class Flag:
    kind: str
    finding: str | None
    sentence_id: str | None
    message: str

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        """Identity of a flag across re-checks (the message may be re-worded)."""
        return (self.kind, self.finding, self.sentence_id)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "finding": self.finding, "sentence_id": self.sentence_id,
                "message": self.message}

    @classmethod
    def from_dict(cls, d: dict) -> "Flag":
        return cls(kind=str(d["kind"]), finding=d.get("finding"), sentence_id=d.get("sentence_id"),
                   message=str(d.get("message", "")))


def _percent(value: float) -> str:
    return f"{100.0 * value:.0f}%"


def _quote(sentence: ReportSentence, limit: int = 90) -> str:
    text = sentence.text if len(sentence.text) <= limit else sentence.text[: limit - 1] + "\u2026"
    return f"\u201c{text}\u201d"


def _sentence_labels(document: ReportDocument) -> list[tuple[ReportSentence, dict]]:
    labelled = []
    for sentence in document.sentences():
        labels: dict = {}
        for part in label_sentences(sentence.text):  # a sentence may hold several clauses
            for name, value in part.labels.items():
                labels.setdefault(name, []).append(value)
        labelled.append((sentence, labels))
    return labelled


def _first_with(labelled, finding: str, values: tuple) -> ReportSentence | None:
    for sentence, labels in labelled:
        if any(v in values for v in labels.get(finding, [])):
            return sentence
    return None


def check_report(document: ReportDocument, findings: list[FindingResult]) -> list[Flag]:
    """The flags to review before signing, in reading order: (a), (b), then (c)."""
    flags: list[Flag] = []
    labelled = _sentence_labels(document)
    by_name = {f.name: f for f in findings}
    asserted, contradicted = [], []
    for finding in findings:
        if finding.name == NO_FINDING:
            continue
        asserting = _first_with(labelled, finding.name, (POSITIVE, UNCERTAIN))
        if asserting is not None and not finding.positive:
            hedged = _first_with(labelled, finding.name, (POSITIVE,)) is None
            verb = "raises the possibility of" if hedged else "asserts"
            asserted.append(Flag(
                ASSERTED_BELOW, finding.name, asserting.id,
                f"The report {verb} {finding.name.lower()} ({_quote(asserting)}), but the classifier "
                f"scores it {_percent(finding.probability)}, below its threshold of "
                f"{_percent(finding.threshold)}. Check the image before keeping this statement."))
        elif asserting is None and finding.positive:
            negating = _first_with(labelled, finding.name, (NEGATIVE,))
            if negating is not None:
                said = f"says there is none ({_quote(negating)})"
            else:
                said = "does not mention it"
            contradicted.append(Flag(
                NEGATED_OR_OMITTED_ABOVE, finding.name, negating.id if negating else None,
                f"The classifier scores {finding.name.lower()} {_percent(finding.probability)}, above its "
                f"threshold of {_percent(finding.threshold)}, but the report {said}. "
                f"Check the image for {finding.name.lower()}."))
    flags.extend(asserted)
    no_finding = by_name.get(NO_FINDING)
    text = document.findings_text() + " " + document.impression_text()
    if (no_finding is not None and not no_finding.positive and not contradicted
            and not document.is_empty() and label_report(text).get(NO_FINDING) == POSITIVE):
        flags.append(Flag(
            ASSERTED_BELOW, NO_FINDING, None,
            f"The report reads as normal, but the classifier's score for a normal study is "
            f"{_percent(no_finding.probability)}, below its threshold of {_percent(no_finding.threshold)}. "
            f"Check the image for an abnormality."))
    flags.extend(contradicted)
    for sentence in document.unreviewed_model_sentences():
        flags.append(Flag(
            UNREVIEWED, None, sentence.id,
            f"Model-written text not yet reviewed: {_quote(sentence)}. Accept it, edit it or delete it."))
    return flags


def unreviewed_flags(flags: list[Flag], reviewed: list[Flag]) -> list[Flag]:
    """Flags in `flags` that `reviewed` does not cover (matched by kind, finding, sentence)."""
    reviewed_keys = {flag.key for flag in reviewed}
    return [flag for flag in flags if flag.key not in reviewed_keys]
