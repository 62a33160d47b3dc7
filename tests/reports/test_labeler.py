"""The CheXpert-style labeler: rules on crafted sentences, agreement with hand labels on real
IU X-ray sentences, spans for the UI, speed."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rrg_desk.models.findings import FINDING_NAMES
from rrg_desk.reports.labeler import (
    BLANK, NEGATIVE, PATHOLOGIES, POSITIVE, UNCERTAIN, label_report, label_sentences, to_binary,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
IU_ANNOTATION = Path("/work/shared/data/iu_xray_reports/annotation.json")

# Floors. Development set (128 sentences; the rules were written knowing these sentences,
# first run 119/128 = 0.930, 126/128 = 0.984 after three generic fixes): a regression guard.
# Held-out set (42 random sentences labelled before the labeler first saw them: 35/42 = 0.833,
# rules not changed for it): 0.80 leaves one sentence of slack; with n = 42 the 95% interval
# of the true agreement is roughly 0.70-0.93, in line with rule labelers (CheXpert/NegBio
# report mention-level F1 around 0.9 on their own report sets).
DEV_FLOOR, HELDOUT_FLOOR = 0.95, 0.80


def _agreement(fixture: str) -> tuple[float, list]:
    rows = json.loads((FIXTURES / fixture).read_text(encoding="utf-8"))["sentences"]
    failures = []
    for row in rows:
        got = {k: v for k, v in label_report(row["sentence"]).items() if k in PATHOLOGIES and v is not BLANK}
        if got != row["labels"]:
            failures.append((row["sentence"], row["labels"], got))
    return 1 - len(failures) / len(rows), failures


@pytest.mark.parametrize(("fixture", "floor", "minimum_size"), [
    ("labeler_iu_sentences.json", DEV_FLOOR, 80),
    ("labeler_iu_heldout.json", HELDOUT_FLOOR, 40),
])
def test_agreement_with_hand_labels(fixture, floor, minimum_size, record_property):
    rows = json.loads((FIXTURES / fixture).read_text(encoding="utf-8"))["sentences"]
    assert len(rows) >= minimum_size
    assert all(set(r["labels"]) <= set(PATHOLOGIES) and set(r["labels"].values()) <= {-1, 0, 1} for r in rows)
    accuracy, failures = _agreement(fixture)
    record_property(f"agreement[{fixture}]", accuracy)
    print(f"\n{fixture}: per-sentence agreement {accuracy:.3f} ({len(rows) - len(failures)}/{len(rows)})")
    for failure in failures:
        print("  disagrees:", failure)
    assert accuracy >= floor, failures


@pytest.mark.skipif(not IU_ANNOTATION.exists(), reason="shared IU X-ray reports not present")
def test_fixture_sentences_are_real_iu_sentences():
    corpus = " ".join(e["report"] for split in json.loads(IU_ANNOTATION.read_text()).values() for e in split)
    for fixture in ("labeler_iu_sentences.json", "labeler_iu_heldout.json"):
        rows = json.loads((FIXTURES / fixture).read_text(encoding="utf-8"))["sentences"]
        assert [r["sentence"] for r in rows if r["sentence"] not in corpus] == []


@pytest.mark.parametrize(("sentence", "finding", "value"), [
    ("There is a large left pleural effusion.", "Pleural Effusion", POSITIVE),
    ("No pleural effusion.", "Pleural Effusion", NEGATIVE),
    ("The lungs are free of focal consolidation.", "Consolidation", NEGATIVE),
    ("Negative for pneumothorax.", "Pneumothorax", NEGATIVE),
    ("Lungs are clear of infiltrate.", "Lung Opacity", NEGATIVE),
    ("Previously seen edema has resolved.", "Edema", NEGATIVE),
    ("Atelectasis rather than pneumonia.", "Pneumonia", NEGATIVE),
    ("Atelectasis rather than pneumonia.", "Atelectasis", POSITIVE),
    ("No change in the left basilar atelectasis.", "Atelectasis", POSITIVE),  # pseudo-negation
    ("Pneumonia cannot be excluded.", "Pneumonia", UNCERTAIN),
    ("Cannot exclude a small pneumothorax.", "Pneumothorax", UNCERTAIN),
    ("Findings may represent early pneumonia.", "Pneumonia", UNCERTAIN),
    ("Right basilar opacity concerning for pneumonia.", "Pneumonia", UNCERTAIN),
    ("Right basilar opacity concerning for pneumonia.", "Lung Opacity", POSITIVE),
    ("Atelectasis versus consolidation.", "Consolidation", UNCERTAIN),
    ("Question of a small nodule.", "Lung Lesion", UNCERTAIN),
    ("Heart size is borderline.", "Cardiomegaly", UNCERTAIN),
    ("The heart is enlarged.", "Cardiomegaly", POSITIVE),
    ("The cardiac silhouette is not enlarged.", "Cardiomegaly", NEGATIVE),
    ("Stable heart size.", "Cardiomegaly", BLANK),
    ("Mild pulmonary edema, no effusion.", "Edema", POSITIVE),
    ("Mild pulmonary edema, no effusion.", "Pleural Effusion", NEGATIVE),
    ("History of tuberculosis.", "Support Devices", BLANK),  # "tube" is a whole word
    ("Platelike atelectasis at the left base.", "Support Devices", BLANK),
    ("Calcified nodule in the right upper lobe.", "Lung Lesion", BLANK),  # CheXpert unmention
    ("Pericardial effusion.", "Pleural Effusion", BLANK),
    ("Congestive heart failure.", "Cardiomegaly", UNCERTAIN),  # CheXpert's CHF rule
])
def test_rules(sentence, finding, value):
    assert label_report(sentence)[finding] == value


def test_report_has_all_findings_in_order():
    labels = label_report("No pneumothorax.")
    assert list(labels) == list(FINDING_NAMES)


def test_no_finding_follows_chexpert():
    assert label_report("The lungs are clear. No pneumothorax or effusion.")["No Finding"] == POSITIVE
    assert label_report("Lungs clear. Left PICC tip in the SVC.")["No Finding"] == POSITIVE  # devices don't block
    assert label_report("Lungs clear. Possible small effusion.")["No Finding"] == BLANK
    assert label_report("Lungs clear. Degenerative changes of the spine.")["No Finding"] == BLANK  # other finding
    assert label_report("Lungs clear. No emphysema.")["No Finding"] == POSITIVE


def test_report_aggregates_positive_over_uncertain_over_negative():
    report = "Possible right effusion. No left effusion. Small right effusion is present."
    assert label_report(report)["Pleural Effusion"] == POSITIVE
    assert label_report("Possible right effusion. No left effusion.")["Pleural Effusion"] == UNCERTAIN


def test_label_sentences_give_mention_spans_in_the_report():
    report = "Heart size is normal. There is a small right pleural effusion. No pneumothorax."
    sentences = label_sentences(report)
    assert [s.text for s in sentences] == ["Heart size is normal.", "There is a small right pleural effusion.",
                                          "No pneumothorax."]
    sentence, labels = sentences[1]  # unpacks as (sentence, labels)
    assert labels["Pleural Effusion"] == POSITIVE and labels["Pneumothorax"] is BLANK
    highlighted = {(m.finding, report[m.start:m.end], m.value) for s in sentences for m in s.mentions}
    assert highlighted == {("Cardiomegaly", "Heart size", NEGATIVE), ("Pleural Effusion", "effusion", POSITIVE),
                           ("Pneumothorax", "pneumothorax", NEGATIVE)}
    for s in sentences:
        assert report[s.start:s.start + len(s.text)] == s.text


def test_to_binary_is_the_r2gen_convention():
    labels = {name: BLANK for name in FINDING_NAMES}
    labels.update({"Edema": POSITIVE, "Atelectasis": UNCERTAIN, "Pneumothorax": NEGATIVE})
    binary = to_binary(labels)
    assert binary["Edema"] == 1 and sum(binary.values()) == 1 and list(binary) == list(FINDING_NAMES)


@pytest.mark.skipif(not IU_ANNOTATION.exists(), reason="shared IU X-ray reports not present")
def test_fast_enough_for_the_pre_sign_check():
    reports = [e["report"] for e in json.loads(IU_ANNOTATION.read_text())["test"]][:300]
    label_report(reports[0])  # load phrase lists once
    start = time.perf_counter()
    for report in reports:
        label_report(report)
    per_report_ms = (time.perf_counter() - start) / len(reports) * 1000
    print(f"\nlabeler: {per_report_ms:.2f} ms per IU report")
    assert per_report_ms < 5.0


def test_phrase_lists_come_from_resources(monkeypatch, tmp_path):
    monkeypatch.setenv("RRG_DESK_RESOURCES", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="chexpert_phrases"):
        label_report("No effusion.")
