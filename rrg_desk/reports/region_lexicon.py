"""Report sentence -> anatomical regions, with a lexicon in the manner of Chest ImaGenome.

Chest ImaGenome attached report sentences to its anatomical regions with a hand-built
lexicon of region phrases plus laterality. This module does the same for RRG Desk's
region set (rrg_desk.models.regions.REGION_NAMES): each lexicon entry is a regex and a
region template; a template with "{side}" takes the side named nearest to the phrase
("right lower lobe", "base on the left", "bibasilar", "lower lobes bilaterally").
A sentence naming no region maps to ["whole_image"] ("No pneumothorax.").
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from rrg_desk.models.regions import WHOLE_IMAGE

_BOTH = ("right", "left")


@dataclass(frozen=True)
class _Entry:
    regex: re.Pattern
    regions: tuple[str, ...]  # templates; "{side}" is filled with right / left
    implies_both: bool = False  # the word itself says both sides ("bibasilar")
    needs_side: bool = False  # only a region when a side is named ("right pneumothorax")


def _entry(pattern: str, *regions: str, both: bool = False, needs_side: bool = False) -> _Entry:
    return _Entry(re.compile(rf"\b(?:{pattern})", re.I), regions, both, needs_side)


# Order matters only for primary_region (earlier text wins, then this order).
_LEXICON: tuple[_Entry, ...] = (
    _entry(r"cardio\s?mediastin\w*", "heart", "mediastinum"),
    _entry(r"heart|cardiac|cardiomegaly|pericardi\w*|atri(?:um|al)|ventric\w*", "heart"),
    _entry(r"trachea\w*|paratracheal|endotracheal|carina|thoracic inlet|thyroid|superior mediastin\w*"
           r"|aortic (?:arch|knob)", "upper_mediastinum"),
    _entry(r"mediastin\w*|aort(?:a|ic)|hiatal|hiatus|sternotomy|\bsvc\b|superior vena cava"
           r"|cav(?:al|o)[- ]?atrial|azygo\w*|paraspinal", "mediastinum"),
    _entry(r"biapical", "{side}_apical_zone", both=True),
    _entry(r"apex|apices|apical|upper pole", "{side}_apical_zone"),
    _entry(r"upper (?:lobes?|lungs?|zones?|lung zones?)", "{side}_upper_zone"),
    _entry(r"middle lobe", "right_mid_zone"),
    _entry(r"lingula\w*", "left_mid_zone", "left_lower_zone"),
    _entry(r"retrocardiac", "left_lower_zone"),
    _entry(r"perihilar|parahilar|hilar|hila|hilum|mid ?lungs?|mid[- ]lungs?|mid (?:zones?|lung zones?)",
           "{side}_mid_zone"),
    _entry(r"bibasilar|bibasal|bases", "{side}_lower_zone", both=True),
    _entry(r"lower (?:lobes?|lungs?|zones?|lung zones?)|base|basilar|basal|infrahilar", "{side}_lower_zone"),
    _entry(r"costophrenic|costodiaphragmatic|blunting|sulcus|sulci|pleural effusions?|pleural fluid"
           r"|effusions?|hydropneumothorax", "{side}_costophrenic_angle"),
    _entry(r"hemidiaphragms?|diaphragms?|subdiaphragmatic|subpulmonic|free (?:intraperitoneal )?air"
           r"|pneumoperitoneum|upper abdomen|stomach", "{side}_hemidiaphragm"),
    _entry(r"clavicles?|clavicular|acromioclavicular", "{side}_clavicle"),
    _entry(r"bilateral\w*|both lungs", "{side}_lung", both=True),
    _entry(r"lungs?|pulmonary|parenchyma\w*|hemithorax|hemithoraces|chest wall|ribs?", "{side}_lung"),
    _entry(r"pneumothora\w*|chest tube", "{side}_lung", needs_side=True),
)
_SIDE = re.compile(r"\b(?:(right)|(left)|(bilateral\w*|both|bi(?=basilar|basal|apical)))", re.I)
_SEGMENT_BREAK = re.compile(r"[,;:]|\b(?:and|with|which|but)\b", re.I)
_BOTH_SIDES_PHRASE = re.compile(r"\b(?:left|right) (?:greater|more|worse) than (?:right|left)\b", re.I)
_LUNG_PARTS = ("upper_zone", "mid_zone", "lower_zone", "apical_zone", "costophrenic_angle")


def _sides_in(text: str) -> set[str]:
    if _BOTH_SIDES_PHRASE.search(text):
        return set(_BOTH)
    sides: set[str] = set()
    for match in _SIDE.finditer(text):
        if match.group(1):
            sides.add("right")
        elif match.group(2):
            sides.add("left")
        else:
            sides.update(_BOTH)
    return sides


def _segment_around(sentence: str, start: int, end: int) -> tuple[str, str]:
    """(text before the phrase, text after it) inside its segment of the sentence."""
    breaks = [(m.start(), m.end()) for m in _SEGMENT_BREAK.finditer(sentence)]
    low = max([e for s, e in breaks if e <= start] + [0])
    high = min([s for s, e in breaks if s >= end] + [len(sentence)])
    return sentence[low:start], sentence[end:high]


def _side_for(sentence: str, start: int, end: int, needs_side: bool = False) -> set[str]:
    before, after = _segment_around(sentence, start, end)
    side_words = list(_SIDE.finditer(before))
    if _BOTH_SIDES_PHRASE.search(sentence[max(0, start - 40):end + 40]):
        return set(_BOTH)
    if side_words:  # nearest side word before the phrase ("left lower lobe")
        return _sides_in(side_words[-1].group(0))
    after_sides = _sides_in(after)
    if after_sides:  # "lower lobes bilaterally", "base on the left"
        return after_sides
    whole = _sides_in(sentence)  # "There is a small right pleural effusion ..."
    if whole or needs_side:
        return whole
    return set(_BOTH)


def _expand(entry: _Entry, sides: set[str]) -> list[str]:
    regions = []
    for template in entry.regions:
        if "{side}" in template:
            regions.extend(template.format(side=side) for side in _BOTH if side in sides)
        else:
            regions.append(template)
    return regions


def _matches(sentence: str) -> list[tuple[int, str]]:
    """(position, region) pairs; longer phrases claim their characters first."""
    hits = []
    for order, entry in enumerate(_LEXICON):
        for match in entry.regex.finditer(sentence):
            hits.append((match.start(), match.end(), order, entry))
    hits.sort(key=lambda h: (-(h[1] - h[0]), h[2]))
    taken: list[tuple[int, int]] = []
    found: list[tuple[int, int, int, str]] = []
    for start, end, order, entry in hits:
        if any(start < e and s < end for s, e in taken):
            continue
        taken.append((start, end))
        sides = set(_BOTH) if entry.implies_both else _side_for(sentence, start, end, entry.needs_side)
        found.extend((start, order, rank, region) for rank, region in enumerate(_expand(entry, sides)))
    found.sort()
    return [(start, region) for start, _, _, region in found]


def regions_for_sentence(sentence: str) -> list[str]:
    """Regions named by a report sentence, in order of mention; ["whole_image"] if none.

    A whole lung is dropped when a zone, apex or angle of the same lung is named too
    ("atelectasis in the left lower lung" -> left_lower_zone, not also left_lung).
    """
    ordered: list[str] = []
    for _, region in _matches(sentence):
        if region not in ordered:
            ordered.append(region)
    for side in _BOTH:
        lung = f"{side}_lung"
        if lung in ordered and any(f"{side}_{part}" in ordered for part in _LUNG_PARTS):
            ordered.remove(lung)
    return ordered or [WHOLE_IMAGE]


def primary_region(sentence: str) -> str:
    """One region for a sentence (training the one-sentence-per-region generator).

    The first region named wins, except that a specific part of a lung (zone, apex, angle,
    hemidiaphragm) beats the lung as a whole and the heart beats the mediastinum when the
    sentence names them together ("cardiomediastinal silhouette").
    """
    regions = regions_for_sentence(sentence)
    specific = [r for r in regions if r not in ("right_lung", "left_lung", "mediastinum")]
    return specific[0] if specific else regions[0]
