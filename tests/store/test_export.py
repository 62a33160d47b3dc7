"""The store's training export: signed reports with their addenda and images into the R2Gen
layout, split by patient, de-identified on request, read-only on the database; and the
`python -m train export-store` command around it."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from rrg_desk.paths import samples_dir
from rrg_desk.reports.document import ReportDocument
from rrg_desk.store import Database, SignedReport, StoreError
from rrg_desk.store.export import ExportStoreError, export_store, patient_split, report_text
from tests.ui.dicom_factory import write_test_study
from train.cli import main

REPORTS = [
    ("The heart size is normal. The lungs are clear.", "No acute cardiopulmonary abnormality."),
    ("There is a small left pleural effusion. Mild cardiomegaly.", "Left effusion."),
    ("Right lower lobe opacity consistent with pneumonia.", "Pneumonia in the right base."),
    ("No pneumothorax. The mediastinum is unremarkable.", "Normal chest."),
    ("Bilateral patchy opacities in both lungs.", "Multifocal pneumonia."),
    ("The cardiac silhouette is enlarged. Pulmonary vascular congestion.", "Cardiomegaly with edema."),
    ("Left upper lobe nodule.", "Nodule, follow-up advised."),
    ("Clear lungs. No effusion.", "No acute disease."),
]


def sign(db: Database, uid: str, findings: str, impression: str) -> None:
    document = ReportDocument(study_uid=uid)
    document.replace_section_text("findings", findings)
    document.replace_section_text("impression", impression)
    db.sign(uid, document, "Dr Test", [])


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A workstation database: the 4 sample studies + 4 synthetic ones, 7 signed, 1 addendum."""
    root = tmp_path_factory.mktemp("store")
    for k in range(4):
        write_test_study(root / f"synthetic{k}", patient_id=f"SYN-{k}", patient_name=f"SYNTH^PATIENT{k}")
    db = Database.open(root / "rrg-desk.sqlite3")
    records, errors = db.import_studies([samples_dir(), *(root / f"synthetic{k}" for k in range(4))], "test")
    assert not errors and len(records) == 8
    for record, (findings, impression) in zip(records[:7], REPORTS):
        sign(db, record.study_uid, findings, impression)
    db.add_addendum(records[0].study_uid, "Addendum: a small right pneumothorax is also seen.", "Dr Test")
    db.mark_clean_shutdown()
    db.close()
    return root / "rrg-desk.sqlite3"


@pytest.fixture(scope="module")
def exported(store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "signed"
    summary = export_store(store, out)
    assert summary.studies == 7 and not summary.skipped
    return out


def test_export_store_writes_signed_reports_with_addenda_and_images_split_by_patient(exported, store):
    annotation = json.loads((exported / "annotation.json").read_text())
    entries = [e for split in ("train", "val", "test") for e in annotation[split]]
    assert len(entries) == 7 and all(annotation[s] for s in ("train", "val", "test"))
    for split in ("train", "val", "test"):
        assert all(e["split"] == split for e in annotation[split])
    patients = {}
    for entry in entries:  # a patient never straddles two splits
        assert patients.setdefault(entry["patientid"], entry["split"]) == entry["split"]
        for relative in entry["image_path"]:
            with Image.open(exported / "images" / relative) as image:
                assert image.mode == "L" and min(image.size) > 100
    with_addendum = [e for e in entries if e["addenda"]]
    assert len(with_addendum) == 1 and with_addendum[0]["report"].endswith("pneumothorax is also seen.")
    assert any(len(e["image_path"]) == 2 and e["views"][0] == "PA" for e in entries)  # frontal first
    assert any(["heart", "Mild cardiomegaly."] in e["sentence_regions"] for e in entries)
    manifest = json.loads((exported / "export.json").read_text())
    assert "no radiologist-drawn region boxes" in manifest["region_boxes"]


def test_export_is_deterministic_and_deidentifies(store, exported, tmp_path):
    again = export_store(store, tmp_path / "again")
    first = json.loads((exported / "annotation.json").read_text())
    second = json.loads((again.out / "annotation.json").read_text())
    assert [e["id"] for e in first["val"]] == [e["id"] for e in second["val"]]
    anonymous = export_store(store, tmp_path / "anon", deidentify=True)
    text = (anonymous.out / "annotation.json").read_text()
    for identifier in ("SAMPLE", "SYN-", "SYNTH", "Dr Test", "1.2.826"):
        assert identifier not in text
    entries = [e for split in json.loads(text).values() for e in split]
    assert all(len(e["patientid"]) == 16 and "study_date" not in e for e in entries)
    signed_days = {e["signed_at"] for e in entries}  # the day only, as YYYY-MM-DD
    assert all(len(day) == 10 and day[4] == day[7] == "-" for day in signed_days)


def test_export_since_a_day_or_a_time_in_utc(store, tmp_path):
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    first = conn.execute("SELECT MIN(signed_at) FROM signed_reports").fetchone()[0]  # ISO, UTC
    conn.close()
    day = first[:10]  # the test's own reading of the stored ISO text
    assert export_store(store, tmp_path / "that_day", since=day).studies == 7
    assert export_store(store, tmp_path / "that_minute", since=first[:16]).studies == 7
    assert export_store(store, tmp_path / "that_minute_utc", since=first[:16] + "+00:00").studies == 7
    next_day = f"{int(day[:4]) + 1}{day[4:]}"
    assert export_store(store, tmp_path / "a_year_on", since=next_day).studies == 0


def test_export_since_and_refusals(store, tmp_path):
    assert export_store(store, tmp_path / "future", since="2999-01-01").studies == 0
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ExportStoreError):
        export_store(store, tmp_path / "busy")
    with pytest.raises(ExportStoreError):
        export_store(tmp_path / "missing.sqlite3", tmp_path / "x")


def test_export_refuses_a_malformed_date_and_a_file_that_is_no_database(tmp_path):
    not_a_database = tmp_path / "notes.sqlite3"
    not_a_database.write_text("not a database")
    with pytest.raises(ExportStoreError, match="YYYY-MM-DD"):
        export_store(not_a_database, tmp_path / "a", since="last week")
    with pytest.raises(StoreError) as refused:
        export_store(not_a_database, tmp_path / "b")
    assert "damaged" in refused.value.user_message


def test_export_never_writes_to_the_database(store, tmp_path):
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    export_store(store, tmp_path / "out", deidentify=True)
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
    with Database.open(store) as db:  # the export left no running instance behind it
        assert db.was_clean_shutdown()
        db.mark_clean_shutdown()


def _signed(kind: str, findings: str = "", impression: str = "", addendum: str = "") -> SignedReport:
    return SignedReport(id=1, study_uid="1.2.3", kind=kind, parent_id=None, findings_text=findings,
                        impression_text=impression, addendum_text=addendum, document=None, signer="Dr",
                        signed_at="2025-01-02T03:04:05+00:00", sha256="")


def test_split_buckets_are_stable_and_report_text_joins_addenda():
    assert patient_split("P1") == patient_split("P1")
    assert {patient_split(f"P{k}") for k in range(200)} == {"train", "val", "test"}
    reports = [_signed("report", "The heart  is\nnormal.", "No acute disease."),
               _signed("addendum", addendum="A small effusion."), _signed("addendum", addendum="  ")]
    assert report_text(reports) == "The heart is normal. No acute disease. A small effusion."


def test_the_export_module_imports_no_torch():
    code = "import sys; sys.modules['torch'] = None; import rrg_desk.store.export"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_export_store_command(store, tmp_path, capsys):
    assert main(["export-store", "--db", str(store), "--out", str(tmp_path / "cli"), "--deidentify"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("7 signed studies") and printed[-1].startswith("region boxes:")
    assert main(["export-store", "--db", str(tmp_path / "missing.sqlite3"), "--out", str(tmp_path / "x")]) == 2
    assert "No workstation database" in capsys.readouterr().err


