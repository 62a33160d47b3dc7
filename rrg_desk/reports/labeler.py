"""A CheXpert-style rule labeler for the 14 CheXpert observations (no torch, no Qt).

Mentions come from the CheXpert labeler's phrase lists (resources/chexpert_phrases, MIT),
plus a few documented additions. Each mention is then classified, clause by clause, as in
NegEx / the CheXpert labeler: pre-negation uncertainty ("cannot be excluded") first, then
negation ("no", "without", "free of", "resolved"...), then uncertainty ("may", "possible",
"versus"...); otherwise positive. Pseudo-negations ("no change", "not only") are ignored.

Anatomical phrases that CheXpert counts as Cardiomegaly / Enlarged Cardiomediastinum
mentions ("heart size", "mediastinal contour") are *neutral*: they are labelled only when
qualified near by ("normal" -> negative, "enlarged" -> positive, "borderline" or "upper
limits of normal" -> uncertain), so "stable heart size" stays blank.

Labels per finding: POSITIVE 1, NEGATIVE 0, UNCERTAIN -1, BLANK None (not mentioned).
Within a sentence and within a report: positive beats uncertain beats negative (CheXpert's
aggregation). "No Finding" is positive when no pathology nor other abnormality (CheXpert's
no_finding list: emphysema, granuloma, scoliosis...) is positive or uncertain; Support
Devices do not block it. Otherwise it is blank, as in CheXpert.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Optional

from rrg_desk.models.findings import FINDING_NAMES, NO_FINDING
from rrg_desk.paths import resources_dir
from rrg_desk.reports.text import split_sentence_spans

POSITIVE, NEGATIVE, UNCERTAIN = 1, 0, -1
BLANK = None
LabelValue = Optional[int]

SUPPORT_DEVICES = "Support Devices"
OTHER_FINDING = "Other Finding"  # CheXpert's no_finding list: blocks No Finding, not reported
PATHOLOGIES: tuple[str, ...] = tuple(n for n in FINDING_NAMES if n != NO_FINDING)

# Additions to the CheXpert lists (regexes). Why each: IU phrasing the lists miss.
_EXTRA_MENTIONS: dict[str, tuple[str, ...]] = {
    "Enlarged Cardiomediastinum": (r"mediastinal widening", r"cardio mediastinal"),
    "Edema": (r"congestion",),  # in chest films "congestion" is pulmonary vascular congestion
    "Pneumothorax": (r"hydropneumothora\w*",),  # the list matches at word starts only
}
# Neutral anatomical mentions (need a qualifier), per finding.
_NEUTRAL: dict[str, tuple[str, ...]] = {
    "Cardiomegaly": (r"the heart", r"heart size", r"cardiac size", r"cardiac shadow", r"cardiac contour",
                     r"cardiac silhouette", r"heart(?!\s+failure)", r"cardiac"),
    "Enlarged Cardiomediastinum": (r"mediastinum", r"contour", r"mediastinal configuration",
                                   r"mediastinal silhouette", r"pericardial silhouette",
                                   r"cardiac silhouette and vascularity", r"cardio mediastinal",
                                   r"cardiomediastinum", r"cardiomediastinal"),
}
# Whole words only: "tube" must not match "tuberculosis", "plate" not "platelike atelectasis",
# "valve" not "valvular", "support" not "supportive".
_WHOLE_WORDS = {"tube", "plate", "valve", "support", "lump", "coil", "marker", "drain", "line", "lines",
                "icd", "mass", "chf", "copd", "apparatus", "device", "hardware", "screw"}
# CheXpert: a positive/uncertain "chf"/"heart failure" makes Cardiomegaly uncertain.
_HEART_FAILURE = re.compile(r"^(?:chf|heart failure)$")

_CLAUSE_BREAK = re.compile(
    r"[;:]|\b(?:but|however|although|though|which|whose|except|aside from|apart from|other than|with)\b")
_SEGMENT_BREAK = re.compile(r",|" + _CLAUSE_BREAK.pattern)

_PSEUDO = re.compile(r"\b(?:no|without)\s+(?:significant\s+|interval\s+|appreciable\s+)?change\b|"
                     r"\bnot\s+only\b|\bno\s+increase\b|\bnot\s+(?:significantly\s+)?changed\b")
_PRE_NEG_UNCERTAIN = re.compile(
    r"\b(?:cannot|can\s+not|could\s+not|not)\s+(?:be\s+)?(?:entirely\s+|completely\s+)?"
    r"(?:excluded|exclude|ruled\s+out|rule\s+out)\b")
_UNCERTAIN_BEFORE = re.compile(
    r"\b(?:may|might|could|can\s+be|possible|possibly|probable|probably|likely|questionable|"
    r"question\s+of|suspicious|suspected|suspect|suspicion|concerning|concern\s+for|worrisome|"
    r"suggest\w*|indeterminate|equivocal|borderline|differential|presumed|cannot\s+exclude|"
    r"most\s+xxxx)\b")  # IU anonymisation turned "most likely" into "most XXXX"
_UNCERTAIN_AFTER = re.compile(r"\b(?:is|are)\s+(?:possible|likely|suspected|questioned)\b")
_UNCERTAIN_EITHER = re.compile(r"\b(?:versus|vs|and/or)\b")
_NEG_BEFORE = re.compile(
    r"\b(?:no|not|without|free\s+of|negative\s+for|clear\s+of|absence\s+of|absent|resolved|resolution\s+of|"
    r"removal\s+of|removed|rather\s+than|nor|neither)\b")
_NEG_AFTER = re.compile(
    r"\b(?:not\s+(?:seen|identified|demonstrated|present|evident|visuali[sz]ed|appreciated|noted|visible|"
    r"detected|apparent)|resolved|cleared|removed|absent|excluded|ruled\s+out)\b")

_NEUTRAL_BORDERLINE = re.compile(
    r"\b(?:borderline|upper\s+limits?\s+(?:of\s+)?normal|upper[- ]normal|top[- ](?:of\s+)?normal|"
    r"high[- ]normal|upper\s+range\s+of\s+normal)\b")
_NEUTRAL_ENLARGED = re.compile(r"\b(?:enlarg\w*|large|larger|increased|prominen\w*|widen\w*)\b")
_NEUTRAL_NORMAL = re.compile(r"\b(?:normal|unremarkable)\b")
_NEUTRAL_NEGATOR = re.compile(r"\b(?:no|not|without)\b")
_NEUTRAL_WINDOW = 70  # characters each side of a neutral mention searched for its qualifier


@dataclass(frozen=True)
class Mention:
    """One matched mention. start/end are character offsets in the labelled text."""

    finding: str
    start: int
    end: int
    phrase: str
    value: LabelValue


@dataclass(frozen=True)
class LabelledSentence:
    """A sentence of a report with its labels; iterates as (sentence, labels)."""

    text: str
    start: int  # offset of the sentence in the report
    labels: dict[str, LabelValue]
    mentions: tuple[Mention, ...]  # offsets in the report (subtract `start` for the sentence)

    def __iter__(self) -> Iterator:
        yield self.text
        yield self.labels


@dataclass(frozen=True)
class _Pattern:
    finding: str
    regex: re.Pattern
    neutral: bool


@dataclass(frozen=True)
class _Cue:
    start: int
    end: int


def _phrase_regex(phrase: str, *, raw: bool = False) -> str:
    """CheXpert phrase -> regex. '_' at an end forces a word boundary there; every phrase
    starts at a word start (CheXpert matched raw substrings: 'pneumothorax' hit 'hydro...')."""
    if raw:
        return rf"(?<![a-z0-9])(?:{phrase})(?:s|es)?(?![a-z0-9])"
    closed = phrase.endswith("_") or phrase.strip("_ ") in _WHOLE_WORDS
    body = re.escape(phrase.strip("_ ").replace("_", " ")).replace(r"\ ", r"\s+")
    tail = r"(?:s|es)?(?![a-z0-9])" if closed else ""
    return rf"(?<![a-z0-9]){body}{tail}"


def _read_phrases(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _file_stem(finding: str) -> str:
    return finding.lower().replace(" ", "_")


@lru_cache(maxsize=4)
def _load_patterns(phrases_root: Path) -> tuple[tuple[_Pattern, ...], dict[str, tuple[re.Pattern, ...]]]:
    if not (phrases_root / "mention").is_dir():
        raise FileNotFoundError(f"CheXpert phrase lists not found under {phrases_root}")
    patterns: list[_Pattern] = []
    neutral_texts = {f: {p.replace("\\", "") for p in ps} for f, ps in _NEUTRAL.items()}
    for finding in PATHOLOGIES + (OTHER_FINDING,):
        stem = "no_finding" if finding == OTHER_FINDING else _file_stem(finding)
        for phrase in _read_phrases(phrases_root / "mention" / f"{stem}.txt"):
            if phrase.strip("_ ").replace("_", " ") in neutral_texts.get(finding, ()):
                continue  # added below as neutral
            patterns.append(_Pattern(finding, re.compile(_phrase_regex(phrase)), neutral=False))
        for phrase in _EXTRA_MENTIONS.get(finding, ()):
            patterns.append(_Pattern(finding, re.compile(_phrase_regex(phrase, raw=True)), neutral=False))
        for phrase in _NEUTRAL.get(finding, ()):
            patterns.append(_Pattern(finding, re.compile(_phrase_regex(phrase, raw=True)), neutral=True))
    unmentions = {
        finding: tuple(re.compile(re.escape(p.replace("_", " "))) for p in
                       _read_phrases(phrases_root / "unmention" / f"{_file_stem(finding)}.txt"))
        for finding in PATHOLOGIES
    }
    return tuple(patterns), unmentions


def _phrases_root() -> Path:
    return resources_dir() / "chexpert_phrases" / "phrases"


def _cues(regex: re.Pattern, text: str, blocked: list[_Cue]) -> list[_Cue]:
    found = [_Cue(m.start(), m.end()) for m in regex.finditer(text)]
    return [c for c in found if not any(c.start < b.end and b.start < c.end for b in blocked)]


class _SentenceScopes:
    """Cue positions and clause limits of one lower-cased sentence."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.clause_breaks = [m.start() for m in _CLAUSE_BREAK.finditer(text)]
        self.segment_breaks = [(m.start(), m.end()) for m in _SEGMENT_BREAK.finditer(text)]
        pseudo = _cues(_PSEUDO, text, [])
        self.pre_neg_uncertain = _cues(_PRE_NEG_UNCERTAIN, text, pseudo)
        blocked = pseudo + self.pre_neg_uncertain
        self.uncertain_before = _cues(_UNCERTAIN_BEFORE, text, blocked)
        self.uncertain_after = _cues(_UNCERTAIN_AFTER, text, blocked)
        self.uncertain_either = _cues(_UNCERTAIN_EITHER, text, blocked)
        self.neg_before = _cues(_NEG_BEFORE, text, blocked)
        self.neg_after = _cues(_NEG_AFTER, text, blocked)

    def _same_clause(self, a: int, b: int) -> bool:
        low, high = min(a, b), max(a, b)
        return not any(low < pos < high for pos in self.clause_breaks)

    def _before(self, cues: list[_Cue], start: int) -> bool:
        return any(c.end <= start and self._same_clause(c.end, start) for c in cues)

    def _after(self, cues: list[_Cue], end: int) -> bool:
        return any(c.start >= end and self._same_clause(end, c.start) for c in cues)

    def negated(self, start: int, end: int) -> bool:
        return self._before(self.neg_before, start) or self._after(self.neg_after, end)

    def uncertain(self, start: int, end: int) -> bool:
        pre_neg = self.pre_neg_uncertain
        return (self._before(self.uncertain_before, start) or self._after(self.uncertain_after, end)
                or self._before(pre_neg, start) or self._after(pre_neg, end)
                or self._before(self.uncertain_either, start) or self._after(self.uncertain_either, end))

    def window(self, start: int, end: int) -> str:
        """The text near a mention, inside its comma-delimited segment."""
        low = max([e for s, e in self.segment_breaks if e <= start] + [0, start - _NEUTRAL_WINDOW])
        high = min([s for s, e in self.segment_breaks if s >= end] + [len(self.text), end + _NEUTRAL_WINDOW])
        return self.text[low:high]

    def classify(self, start: int, end: int) -> LabelValue:
        uncertain_first = self._before(self.pre_neg_uncertain, start) or self._after(self.pre_neg_uncertain, end)
        if uncertain_first:
            return UNCERTAIN
        if self.negated(start, end):
            return NEGATIVE
        return UNCERTAIN if self.uncertain(start, end) else POSITIVE

    def classify_neutral(self, start: int, end: int) -> LabelValue:
        near = self.window(start, end)
        if _NEUTRAL_BORDERLINE.search(near):
            return UNCERTAIN
        enlarged = _NEUTRAL_ENLARGED.search(near)
        if enlarged:
            if _NEUTRAL_NEGATOR.search(near[: enlarged.start()]):
                return NEGATIVE
            return UNCERTAIN if self.uncertain(start, end) else POSITIVE
        return NEGATIVE if _NEUTRAL_NORMAL.search(near) else BLANK


def _combine(values: list[LabelValue]) -> LabelValue:
    """CheXpert's aggregation: positive > uncertain > negative > blank."""
    for value in (POSITIVE, UNCERTAIN, NEGATIVE):
        if value in values:
            return value
    return BLANK


def _sentence_mentions(sentence: str, offset: int) -> list[Mention]:
    patterns, unmentions = _load_patterns(_phrases_root())
    low = sentence.lower()
    scopes = _SentenceScopes(low)
    found: list[tuple[_Pattern, int, int]] = []
    for pattern in patterns:
        for match in pattern.regex.finditer(low):
            start, end = match.span()
            if any(u.start() < end and start < u.end()
                   for u in _unmention_hits(unmentions.get(pattern.finding, ()), low)):
                continue
            found.append((pattern, start, end))
    # Longest first; drop a mention overlapping a kept one of the same finding, and a neutral
    # mention inside any finding-type mention ("heart" in "heart failure").
    found.sort(key=lambda item: (item[2] - item[1], not item[0].neutral), reverse=True)
    kept: list[tuple[_Pattern, int, int]] = []
    for pattern, start, end in found:
        clash = any(s < end and start < e and (p.finding == pattern.finding or (pattern.neutral and not p.neutral))
                    for p, s, e in kept)
        if not clash:
            kept.append((pattern, start, end))
    mentions = []
    for pattern, start, end in sorted(kept, key=lambda item: item[1]):
        value = scopes.classify_neutral(start, end) if pattern.neutral else scopes.classify(start, end)
        if value is BLANK:
            continue
        mentions.append(Mention(pattern.finding, offset + start, offset + end, sentence[start:end], value))
    return mentions


def _unmention_hits(regexes: tuple[re.Pattern, ...], text: str) -> list[re.Match]:
    return [m for regex in regexes for m in regex.finditer(text)]


def _labels_from_mentions(mentions: list[Mention]) -> dict[str, LabelValue]:
    per_finding: dict[str, list[LabelValue]] = {name: [] for name in PATHOLOGIES}
    blocks_no_finding = False
    for mention in mentions:
        if mention.value in (POSITIVE, UNCERTAIN) and mention.finding != SUPPORT_DEVICES:
            blocks_no_finding = True
        if mention.finding == OTHER_FINDING:
            continue
        per_finding[mention.finding].append(mention.value)
        if mention.value in (POSITIVE, UNCERTAIN) and _HEART_FAILURE.match(mention.phrase.lower()):
            per_finding["Cardiomegaly"].append(UNCERTAIN)
    labels: dict[str, LabelValue] = {NO_FINDING: BLANK if blocks_no_finding else POSITIVE}
    labels.update({name: _combine(values) for name, values in per_finding.items()})
    return {name: labels[name] for name in FINDING_NAMES}


def label_sentences(text: str) -> list[LabelledSentence]:
    """Per-sentence labels (No Finding judged per sentence) with the span of every mention."""
    result = []
    for start, end in split_sentence_spans(text):
        sentence = text[start:end]
        mentions = _sentence_mentions(sentence, start)
        labels = _labels_from_mentions(mentions)
        result.append(LabelledSentence(sentence, start, labels, tuple(mentions)))
    return result


def label_report(text: str) -> dict[str, LabelValue]:
    """The 14 CheXpert labels of a report, in FINDING_NAMES order."""
    mentions = [m for sentence in label_sentences(text) for m in sentence.mentions]
    return _labels_from_mentions(mentions)


def to_binary(labels: dict[str, LabelValue]) -> dict[str, int]:
    """R2Gen's clinical-efficacy convention: positive -> 1; negative, uncertain, blank -> 0."""
    return {name: int(labels.get(name) == POSITIVE) for name in FINDING_NAMES}
