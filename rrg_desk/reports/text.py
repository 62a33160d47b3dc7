"""Report text: sentence splitting, R2Gen-style cleaning, clinical-note cleaning.

Pure string functions (no torch, no Qt) shared by the labeler, the region lexicon,
the training datasets and the metrics.
"""
from __future__ import annotations

import re

# A sentence ends at . ! ? (one or more) followed by white space, the end of the text,
# or directly by a capital letter ("limits.The lungs" occurs in IU X-ray). A full stop
# between two digits ("2.0 cm") never ends a sentence. Newlines always end one.
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$|[A-Z])|\n+")
_ENUMERATOR = re.compile(r"^\s*(?:\(?\d{1,2}[.)]|[-*\u2022])\s+")
_ONLY_PUNCT_OR_NUMBER = re.compile(r"^[\W\d_]*$")


def split_sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences of `text`, end exclusive.

    Spans include the sentence's terminal punctuation, exclude surrounding white space
    and leading list numbers ("1. "), and skip fragments that hold no word.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end() if match.group().strip() else match.start()
        _append_span(text, start, end, spans)
        start = match.end()
    _append_span(text, start, len(text), spans)
    return spans


def _append_span(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    piece = text[start:end]
    enumerator = _ENUMERATOR.match(piece)
    if enumerator:
        start += enumerator.end()
        piece = text[start:end]
    stripped_left = len(piece) - len(piece.lstrip())
    start += stripped_left
    end = start + len(piece.strip())
    if end > start and not _ONLY_PUNCT_OR_NUMBER.match(text[start:end]):
        spans.append((start, end))


def split_sentences(text: str) -> list[str]:
    """The sentences of a report, stripped, in order ("1. No effusion. 2. ..." -> no numbers)."""
    return [text[start:end] for start, end in split_sentence_spans(text)]


def clean_report_r2gen(report: str) -> str:
    """R2Gen's `clean_report_iu_xray`, rule for rule, so our metrics match published numbers.

    Reference: R2Gen, modules/tokenizers.py, `Tokenizer.clean_report_iu_xray`
    (https://github.com/zhjohnchan/R2Gen, Chen et al., EMNLP 2020). The rules, in order:

    1. replace ".." by "." three times (collapses up to 8 repeated full stops);
    2. delete "1. "; replace ". 2. " ... ". 5. " by ". " and then " 2. " ... " 5. " by ". "
       (strips list numbering 1-5);
    3. strip, lower-case, and split into sentences on ". " (full stop + one space);
    4. in every sentence delete the characters  " / \\ '  and then every character of the
       regex class ``[.,?;*!%^&_+():-\\[\\]{}]``. Note that ``:-\\[`` in that class is a
       *range* (":" to "["), so ; < = > ? @ and A-Z are deleted too, while "-" and digits
       survive (R2Gen's quirk, kept on purpose);
    5. (the strip and lower-case happen before the deletion of step 4) join with " . " and append " ." - empty
       sentences are kept (R2Gen's filter compares a string with [] and never drops any).

    Example: "The heart is normal. 2. No effusion.." -> "the heart is normal . no effusion ."
    """
    text = report.replace("..", ".").replace("..", ".").replace("..", ".")
    text = text.replace("1. ", "")
    for number in "2345":
        text = text.replace(f". {number}. ", ". ")
    for number in "2345":
        text = text.replace(f" {number}. ", ". ")
    sentences = text.strip().lower().split(". ")
    cleaned = [_r2gen_clean_sentence(sentence) for sentence in sentences]
    return " . ".join(cleaned) + " ."


_R2GEN_DROPPED = re.compile(r"[.,?;*!%^&_+():-\[\]{}]")


def _r2gen_clean_sentence(sentence: str) -> str:
    for char in ('"', "/", "\\", "'"):
        sentence = sentence.replace(char, "")
    return _R2GEN_DROPPED.sub("", sentence.strip().lower())


# --- covid_cxr clinical notes -------------------------------------------------------------

# The notes were scraped with non-ASCII characters turned into "?": "38.2?C", "?wet market?",
# "3.13?109/L". A "?" glued between a digit and a letter/digit was a degree or a times sign.
_DEGREE_ARTEFACT = re.compile(r"(?<=\d)\?(?=[CF]\b)")
_TIMES_ARTEFACT = re.compile(r"(?<=\d)\?(?=10\d)")
_QUOTE_ARTEFACT = re.compile(r"(?<![\w?])\?([\w][\w\s'-]{0,40}?)\?(?![\w?])")
_FIGURE_POINTERS = re.compile(r"\s*\((?:arrows?|arrowheads?|asterisks?|circles?|stars?)[^)]*\)", re.I)
_URL = re.compile(r"https?://\S+")
_MISSING_SPACE = re.compile(r"(?<=[A-Za-z)])\.(?=[A-Z][a-z])")


def clean_clinical_note(note: str) -> str:
    """Readable text from a covid_cxr clinical note (history + findings narrative).

    Repairs the scraper's "?" artefacts (degree, times and quote signs), re-inserts the
    space missing after some full stops ("thickenings.No"), drops figure pointers
    ("(arrow)", "(asterisk)") and URLs, and collapses white space. Case is kept; apply
    `clean_report_r2gen` afterwards for model targets.
    """
    text = _URL.sub("", note)
    text = _DEGREE_ARTEFACT.sub("\u00b0", text)
    text = _TIMES_ARTEFACT.sub("\u00d7", text)
    text = _QUOTE_ARTEFACT.sub(r'"\1"', text)
    text = _FIGURE_POINTERS.sub("", text)
    text = _MISSING_SPACE.sub(". ", text)
    text = re.sub(r"\s+", " ", text).strip()
    if text and text[-1] not in ".!?":
        text += "."
    return text
