"""The draft's text bound to the classifier (TRRG's truthfulness, kept at decoding time).

The generator writes one sentence per region with the classifier's probabilities as
disease clues; this module then holds the text to what the classifier decided, using the
project's CheXpert-style labeler to read each sentence:
- a sentence that asserts (or raises the possibility of) a finding the classifier scores
  below its threshold is dropped, and so is one that denies a finding above threshold;
- content-free sentences ("Chest x-ray images and chest x-ray.") and sentences with a
  repeated word ("left-sided-sided") are dropped;
- a whole-chest normal statement ("No acute cardiopulmonary abnormality.") is dropped when
  any finding is positive;
- each finding is stated positively at most once; a positive finding no sentence states
  gets one (`missing_findings` says which; the pipeline writes it).
Nothing here imports torch or Qt.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from rrg_desk.models.findings import NO_FINDING
from rrg_desk.models.regions import WHOLE_IMAGE
from rrg_desk.reports.draft import FindingResult, Sentence, called_present
from rrg_desk.reports.labeler import NEGATIVE, POSITIVE, UNCERTAIN, label_report

# words that say nothing about the patient: a sentence made only of these is content-free
_EMPTY_WORDS = frozenset("""a an and are as at be been being by chest ct computed demonstrate demonstrated demonstrates
examination exam film films for frontal from image images imaging in is it lateral of on pa ap portable radiograph
radiographs radiography ray rays reveal revealed reveals scan scans show showed shown shows study the there this
tomography upright view views was were which with x xray""".split())
_REPEATED_WORD = re.compile(r"\b([a-z]{2,})(?:[\s-]+\1\b)+", re.IGNORECASE)
_REPEATED_PHRASE = re.compile(r"\b([a-z]+[\s-]+[a-z]+)\b.*\b\1\b", re.IGNORECASE)  # "chest ct ... chest ct"
_GLOBAL_NORMAL = re.compile(r"no (?:evidence of )?(?:acute|active) (?:cardio\s?pulmonary|pulmonary|intrathoracic)?"
                            r"\s*(?:disease|abnormalit\w*|process|findings?)|normal chest|chest is normal"
                            r"|no acute (?:abnormalit\w*|findings?)", re.IGNORECASE)

# where a finding is usually described, in order of preference (the pipeline picks by heatmap)
FINDING_REGIONS: dict[str, tuple[str, ...]] = {
    "Enlarged Cardiomediastinum": ("mediastinum", "heart"),
    "Cardiomegaly": ("heart",),
    "Lung Lesion": ("right_upper_zone", "left_upper_zone", "right_mid_zone", "left_mid_zone",
                    "right_lower_zone", "left_lower_zone"),
    "Lung Opacity": ("right_lower_zone", "left_lower_zone", "right_mid_zone", "left_mid_zone",
                     "right_upper_zone", "left_upper_zone"),
    "Edema": ("right_lung", "left_lung"),
    "Consolidation": ("right_lower_zone", "left_lower_zone", "right_mid_zone", "left_mid_zone",
                      "right_upper_zone", "left_upper_zone"),
    "Pneumonia": ("right_lower_zone", "left_lower_zone", "right_mid_zone", "left_mid_zone",
                  "right_upper_zone", "left_upper_zone"),
    "Atelectasis": ("right_lower_zone", "left_lower_zone", "right_mid_zone", "left_mid_zone"),
    "Pneumothorax": ("right_apical_zone", "left_apical_zone", "right_upper_zone", "left_upper_zone"),
    "Pleural Effusion": ("right_costophrenic_angle", "left_costophrenic_angle"),
    "Pleural Other": ("right_lung", "left_lung"),
    "Fracture": (WHOLE_IMAGE,),
    "Support Devices": (WHOLE_IMAGE,),
}

# the sentence written for a positive finding when the generator does not state it
FINDING_SENTENCES: dict[str, str] = {
    "Enlarged Cardiomediastinum": "The cardiomediastinal silhouette is enlarged.",
    "Cardiomegaly": "The heart is enlarged.",
    "Lung Lesion": "There is a pulmonary nodule or mass.",
    "Lung Opacity": "There is an opacity in the lung.",
    "Edema": "There is pulmonary edema.",
    "Consolidation": "There is focal consolidation.",
    "Pneumonia": "Findings are consistent with pneumonia.",
    "Atelectasis": "There is atelectasis.",
    "Pneumothorax": "There is a pneumothorax.",
    "Pleural Effusion": "There is a pleural effusion.",
    "Pleural Other": "There is pleural thickening.",
    "Fracture": "There is a possible fracture.",
    "Support Devices": "Support devices are in place.",
}


# findings in the lung itself: "the lungs are clear" cannot stand beside any of them
LUNG_FINDINGS = frozenset({"Lung Opacity", "Lung Lesion", "Edema", "Consolidation", "Pneumonia", "Atelectasis"})


@dataclass(frozen=True)
class SentenceReading:
    asserted: frozenset[str]   # findings stated as present or possible
    denied: frozenset[str]     # findings stated as absent
    global_normal: bool        # "no acute cardiopulmonary abnormality" and the like
    content_free: bool
    repeated_word: bool
    placeholder: bool = False  # holds IU's de-identification mask "xxxx": its meaning was removed at the source
    other_abnormality: bool = False  # states an abnormality outside the findings ("calcified granuloma")
    clear_lungs: bool = False  # calls the lungs clear or normal ("The lungs are otherwise clear.")
    garbled: bool = False      # unbalanced brackets or stray quotes: a broken source sentence


def read_sentence(text: str) -> SentenceReading:
    labels = label_report(text)
    asserted = frozenset(n for n, v in labels.items() if n != NO_FINDING and v in (POSITIVE, UNCERTAIN))
    denied = frozenset(n for n, v in labels.items() if n != NO_FINDING and v == NEGATIVE)
    words = re.findall(r"[a-z]+", text.lower())
    return SentenceReading(asserted, denied, bool(_GLOBAL_NORMAL.search(text)),
                           content_free=not any(w not in _EMPTY_WORDS for w in words),
                           repeated_word=bool(_REPEATED_WORD.search(text) or _REPEATED_PHRASE.search(text)),
                           placeholder="xxxx" in words,
                           other_abnormality=labels[NO_FINDING] != POSITIVE and not asserted,
                           clear_lungs=labels[NO_FINDING] == POSITIVE and "lungs" in words,
                           garbled=text.count("(") != text.count(")") or '"' in text)


def positive_findings(findings: list[FindingResult]) -> set[str]:
    """The pathologies the classifier calls present."""
    return called_present(findings) - {NO_FINDING}


def sentence_problem(reading: SentenceReading, positive: set[str]) -> str | None:
    """Why a sentence may not stand beside these classifier decisions, or None."""
    if reading.content_free:
        return "says nothing about the patient"
    if reading.repeated_word:
        return "repeats a word"
    if reading.placeholder:
        return "holds a de-identification placeholder (xxxx)"
    if reading.garbled:
        return "is garbled"
    if reading.other_abnormality:  # the classifier cannot support it, so the model may not say it
        return "states an abnormality the classifier does not assess"
    unsupported = reading.asserted - positive
    if unsupported:
        return f"asserts {', '.join(sorted(unsupported))}, which the classifier scores below threshold"
    contradicted = reading.denied & positive
    if contradicted:
        return f"denies {', '.join(sorted(contradicted))}, which the classifier scores above threshold"
    if reading.global_normal and positive:
        return "calls the chest normal beside a positive finding"
    if reading.clear_lungs and positive & LUNG_FINDINGS:
        return "calls the lungs clear beside a lung finding the classifier calls present"
    return None


def bind_to_findings(sentences: list[Sentence], findings: list[FindingResult]) -> tuple[list[Sentence], list[str]]:
    """(the sentences that may stand, positive findings no kept sentence states, in
    probability order). Keeps the first sentence stating each finding."""
    positive = positive_findings(findings)
    kept, stated = [], set()
    for sentence in sentences:
        reading = read_sentence(sentence.text)
        if sentence_problem(reading, positive) is not None:
            continue
        if reading.asserted and reading.asserted <= stated:
            continue  # one sentence per finding
        kept.append(sentence)
        stated |= reading.asserted
    order = sorted(findings, key=lambda f: f.probability, reverse=True)
    missing = [f.name for f in order if f.name in positive - stated]
    return kept, missing


# a normal study still reads region by region: the statement for each area no sentence covers
NORMAL_STATEMENTS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("heart", "The heart size is normal.", frozenset({"Cardiomegaly", "Enlarged Cardiomediastinum"})),
    (WHOLE_IMAGE, "The lungs are clear.", LUNG_FINDINGS),
    (WHOLE_IMAGE, "There is no pleural effusion or pneumothorax.",
     frozenset({"Pleural Effusion", "Pneumothorax", "Pleural Other"})),
)
_AREA_REGIONS = {"heart": {"heart", "mediastinum", "upper_mediastinum"}}


def normal_statements(sentences: list[Sentence], findings: list[FindingResult]) -> list[tuple[str, str]]:
    """(region, text) of the normal statements to add: one per area (heart, lungs, pleura) that no
    kept sentence speaks about and where the classifier sees nothing."""
    positive = positive_findings(findings)
    spoken = set()
    for sentence in sentences:
        reading = read_sentence(sentence.text)
        spoken |= reading.asserted | reading.denied
        if sentence.region in _AREA_REGIONS["heart"]:
            spoken |= {"Cardiomegaly"}
        if re.search(r"\blungs?\b.*\bclear\b|\bclear lungs?\b", sentence.text, re.IGNORECASE):
            spoken |= {"Lung Opacity"}
    return [(region, text) for region, text, area in NORMAL_STATEMENTS
            if not (area & positive) and not (area & spoken)]


def states_only(text: str, finding: str, positive: set[str]) -> bool:
    """True when `text` states `finding` and nothing the classifier does not support."""
    reading = read_sentence(text)
    return finding in reading.asserted and sentence_problem(reading, positive) is None


def contradictions(findings_text: str, impression_text: str, findings: list[FindingResult]) -> int:
    """Contradictions of a draft with its own classifier: each finding the text asserts below
    threshold, plus one for a normal impression beside positive text (issue 13's measure)."""
    positive = positive_findings(findings)
    asserted = set()
    for sentence in re.split(r"(?<=[.!?])\s+", findings_text.strip()):
        if sentence:
            asserted |= read_sentence(sentence).asserted
    count = len(asserted - positive)
    impression = read_sentence(impression_text)
    if asserted and (impression.global_normal or not impression.asserted) and not impression.asserted & asserted:
        count += 1
    return count
