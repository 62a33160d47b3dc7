"""Which projection an image is: from DICOM attributes or, for PNG/JPEG, the file name."""
from __future__ import annotations

import re
from collections.abc import Iterable

from rrg_desk.imaging.types import ViewPosition

# DICOM View Position (0018,5101) values. Decubitus (LLD/RLD) and obliques are neither a
# plain frontal nor a plain lateral, so they stay UNKNOWN rather than being guessed.
_VIEW_POSITION_VALUES = {
    "PA": ViewPosition.PA,
    "AP": ViewPosition.AP,
    "LL": ViewPosition.LATERAL,
    "RL": ViewPosition.LATERAL,
    "LAT": ViewPosition.LATERAL,
    "LATERAL": ViewPosition.LATERAL,
}

# View Code Sequence codes (CID 4010): SNOMED CT and the legacy SNOMED-RT values.
_VIEW_CODES = {
    "272479007": ViewPosition.PA,
    "R-10214": ViewPosition.PA,
    "399348003": ViewPosition.AP,
    "R-10206": ViewPosition.AP,
    "399067008": ViewPosition.LATERAL,
    "49370004": ViewPosition.LATERAL,
    "399173006": ViewPosition.LATERAL,
    "399198007": ViewPosition.LATERAL,
    "R-10232": ViewPosition.LATERAL,
    "R-10236": ViewPosition.LATERAL,
}

# Words in free text (series description, protocol name, file name) that name a view.
_WORD_HINTS = {
    "pa": ViewPosition.PA,
    "posteroanterior": ViewPosition.PA,
    "ap": ViewPosition.AP,
    "anteroposterior": ViewPosition.AP,
    "lat": ViewPosition.LATERAL,
    "lateral": ViewPosition.LATERAL,
    "ll": ViewPosition.LATERAL,
    "rl": ViewPosition.LATERAL,
}
_NOT_PLAIN_VIEW = {"oblique", "obl", "decubitus", "lld", "rld"}
_WORD_SPLIT = re.compile(r"[^a-z]+")


def view_from_text(*texts: str) -> ViewPosition:
    """First view named by whole words in `texts`; UNKNOWN when none or when contradictory.

    Whole words only, so "chest_pa" is PA but "patient" or "lapa" is not.
    """
    found: set[ViewPosition] = set()
    for text in texts:
        words = [w for w in _WORD_SPLIT.split(_normalise(text)) if w]
        if any(w in _NOT_PLAIN_VIEW for w in words):
            return ViewPosition.UNKNOWN
        found.update(_WORD_HINTS[w] for w in words if w in _WORD_HINTS)
        if found:
            break
    return found.pop() if len(found) == 1 else ViewPosition.UNKNOWN


def view_from_position_value(value: str) -> ViewPosition:
    return _VIEW_POSITION_VALUES.get(value.strip().upper(), ViewPosition.UNKNOWN)


def view_from_codes(items: Iterable[tuple[str, str]]) -> ViewPosition:
    """(code value, code meaning) pairs from a View Code Sequence."""
    for code_value, meaning in items:
        view = _VIEW_CODES.get(code_value.strip())
        if view is not None:
            return view
        view = view_from_text(meaning)
        if view is not ViewPosition.UNKNOWN:
            return view
    return ViewPosition.UNKNOWN


def _normalise(text: str) -> str:
    # "postero-anterior" and "antero-posterior" are one word for our purpose
    lowered = text.lower()
    return lowered.replace("postero-anterior", "posteroanterior").replace(
        "antero-posterior", "anteroposterior"
    )
