"""From per-region sentences and finding probabilities to FINDINGS and IMPRESSION text.

Sentences are ordered the way radiologists dictate (heart and mediastinum, lungs, pleura,
diaphragm, bones, then statements about the whole image). The IMPRESSION is built from the
classifier's positive findings only, so it cannot assert what the classifier does not see.
"""
from __future__ import annotations

import re

from rrg_desk.models.regions import WHOLE_IMAGE
from rrg_desk.reports.draft import FindingResult, Sentence

_DICTATION_ORDER = (
    "heart", "mediastinum", "upper_mediastinum",
    "right_lung", "left_lung",
    "right_apical_zone", "left_apical_zone", "right_upper_zone", "left_upper_zone",
    "right_mid_zone", "left_mid_zone", "right_lower_zone", "left_lower_zone",
    "right_costophrenic_angle", "left_costophrenic_angle",
    "right_hemidiaphragm", "left_hemidiaphragm",
    "right_clavicle", "left_clavicle",
    WHOLE_IMAGE,
)

# how the impression names each positive finding
_IMPRESSION_PHRASES = {
    "Enlarged Cardiomediastinum": "Enlarged cardiomediastinal silhouette",
    "Cardiomegaly": "Cardiomegaly",
    "Lung Lesion": "Pulmonary nodule or mass",
    "Lung Opacity": "Pulmonary opacity",
    "Edema": "Pulmonary edema",
    "Consolidation": "Consolidation",
    "Pneumonia": "Findings suggestive of pneumonia",
    "Atelectasis": "Atelectasis",
    "Pneumothorax": "Pneumothorax",
    "Pleural Effusion": "Pleural effusion",
    "Pleural Other": "Pleural thickening",
    "Fracture": "Possible fracture",
    "Support Devices": "Support devices in place",
}
NORMAL_IMPRESSION = "No acute cardiopulmonary abnormality."


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


_FIGURE_REFERENCE = re.compile(r"\s*\(\s*(fig|figure|image|panel)s?\b[^)]*(\)|$)", re.IGNORECASE)
# a section label the case notes put before their imaging sentences ("Imaging notes: ...")
_SECTION_LABEL = re.compile(r"^\s*(?:imaging notes|findings|impression|image findings)\s*:\s*", re.IGNORECASE)


def tidy_sentence(text: str) -> str:
    """Drop figure pointers and section labels learned from case notes ("... lower lobes (fig.",
    "Imaging notes: ...") and stray spaces; the sentence starts with a capital."""
    text = _SECTION_LABEL.sub("", _FIGURE_REFERENCE.sub("", text)).strip()
    if text:
        text = text[0].upper() + text[1:]
    if text and text[-1] not in ".!?":
        text += "."
    return text


def merge_duplicate_sentences(sentences: list[Sentence], threshold: float = 0.8) -> list[Sentence]:
    """Drop a sentence whose words overlap an earlier one's by Jaccard >= threshold.

    Neighbouring regions often yield the same sentence ("The lungs are clear."); the report
    states it once, tied to the first region that produced it."""
    kept: list[Sentence] = []
    kept_words: list[set[str]] = []
    for sentence in sentences:
        words = _words(sentence.text)
        duplicate = any(words == other or (words and other and len(words & other) / len(words | other) >= threshold)
                        for other in kept_words)
        if not duplicate:
            kept.append(sentence)
            kept_words.append(words)
    return kept


def report_order(sentences: list[Sentence]) -> list[Sentence]:
    rank = {name: i for i, name in enumerate(_DICTATION_ORDER)}
    return sorted(sentences, key=lambda s: rank.get(s.region, len(rank)))  # stable within a region


def impression_from_findings(findings: list[FindingResult]) -> str:
    positive = [f for f in findings if f.positive and f.name in _IMPRESSION_PHRASES]
    pathologies = [f for f in positive if f.name != "Support Devices"]
    if not pathologies:
        lines = [NORMAL_IMPRESSION]
    else:
        pathologies.sort(key=lambda f: f.probability, reverse=True)
        lines = [f"{_IMPRESSION_PHRASES[f.name]}." for f in pathologies]
    if any(f.name == "Support Devices" for f in positive):
        lines.append(f"{_IMPRESSION_PHRASES['Support Devices']}.")
    return " ".join(lines)


def assemble_report(sentences: list[Sentence], findings: list[FindingResult]) -> tuple[str, str]:
    findings_text = " ".join(s.text.strip() for s in sentences if s.text.strip())
    return findings_text, impression_from_findings(findings)
