"""Sentence splitting, R2Gen cleaning (checked against R2Gen's own code), clinical notes."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rrg_desk.reports.text import (
    clean_clinical_note,
    clean_report_r2gen,
    split_sentence_spans,
    split_sentences,
)

IU_ANNOTATION = Path("/work/shared/data/iu_xray_reports/annotation.json")


def test_split_keeps_decimals_and_handles_missing_space_and_numbering():
    text = "1. Heart size normal.The lungs are clear. 2. Nodule of 2.0 cm!\nNo effusion"
    assert split_sentences(text) == ["Heart size normal.", "The lungs are clear.", "Nodule of 2.0 cm!", "No effusion"]


def test_spans_point_into_the_text():
    text = "  No pneumothorax.  Heart size is normal. "
    spans = split_sentence_spans(text)
    assert [text[a:b] for a, b in spans] == ["No pneumothorax.", "Heart size is normal."]


def test_split_drops_empty_fragments():
    assert split_sentences("... . 3.") == []
    assert split_sentences("") == []


def _r2gen_reference(report: str) -> str:
    """R2Gen modules/tokenizers.py clean_report_iu_xray, transcribed in its original form."""
    report_cleaner = lambda t: t.replace('..', '.').replace('..', '.').replace('..', '.').replace('1. ', '') \
        .replace('. 2. ', '. ').replace('. 3. ', '. ').replace('. 4. ', '. ').replace('. 5. ', '. ') \
        .replace(' 2. ', '. ').replace(' 3. ', '. ').replace(' 4. ', '. ').replace(' 5. ', '. ') \
        .strip().lower().split('. ')  # noqa: E731
    sent_cleaner = lambda t: re.sub('[.,?;*!%^&_+():-\\[\\]{}]', '', t.replace('"', '').replace('/', '')
                                    .replace('\\', '').replace("'", '').strip().lower())  # noqa: E731
    tokens = [sent_cleaner(sent) for sent in report_cleaner(report) if sent_cleaner(sent) != []]
    return ' . '.join(tokens) + ' .'


def test_clean_report_r2gen_small_case():
    assert clean_report_r2gen("The heart is normal. 2. No effusion..") == "the heart is normal . no effusion ."
    assert clean_report_r2gen('Opacity (2.0 cm) "mass"?') == "opacity 20 cm mass ."
    assert clean_report_r2gen("Right-sided: effusion.") == "right-sided effusion ."  # '-' survives, ':' does not


@pytest.mark.parametrize("report", [
    "1. No acute disease. 2. Stable cardiomegaly.. 3. Left/right ratio? Hmm; [x] {y} 50% a+b",
    "The heart is normal.The lungs are clear. XXXX are intact.",
    "  Multiple.. dots... here.... and 'quotes' \\ back  ",
])
def test_clean_report_r2gen_matches_r2gen_code(report):
    assert clean_report_r2gen(report) == _r2gen_reference(report)


@pytest.mark.skipif(not IU_ANNOTATION.exists(), reason="shared IU X-ray reports not present")
def test_clean_report_r2gen_matches_r2gen_code_on_all_iu_reports():
    annotation = json.loads(IU_ANNOTATION.read_text())
    reports = [e["report"] for split in annotation.values() for e in split]
    mismatches = [r for r in reports if clean_report_r2gen(r) != _r2gen_reference(r)]
    assert len(reports) == 2955 and mismatches == []


def test_clinical_note_repairs_scraper_artefacts():
    note = ("He had not visited a ?wet market? in Wuhan. Fever (38.2?C), WBC 3.13?109/L.  "
            "Patchy opacities (arrow) in the RML.No pleural effusion http://x.org/a")
    assert clean_clinical_note(note) == ('He had not visited a "wet market" in Wuhan. Fever (38.2\u00b0C), '
                                         'WBC 3.13\u00d7109/L. Patchy opacities in the RML. No pleural effusion.')
