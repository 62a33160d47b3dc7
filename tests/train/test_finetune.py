"""The feedback loop end to end: signed reports in a store -> export-store -> finetune -> a
new bundle that drafts in the app's pipeline, beside an untouched parent."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from rrg_desk.inference.pipeline import DraftPipeline
from rrg_desk.models.bundle import build_random_bundle, load_bundle
from rrg_desk.paths import samples_dir
from rrg_desk.reports.document import ReportDocument
from rrg_desk.store import Database
from tests.ui.dicom_factory import write_test_study
from train.cli import main
from train.export_store import ExportStoreError, export_store, patient_split, report_text

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
FAST_FINETUNE = ["--set", "finetune.generator_loop={epochs: 1, batch_size: 4, lr: 0.001, warmup_steps: 1, "
                          "progress: false}",
                 "--set", "finetune.evaluate.meteor=false", "--device", "cpu"]


def folder_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


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


@pytest.fixture(scope="module")
def finetuned(exported, tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    parent = build_random_bundle(root / "parent", size="tiny", seed=1)
    before = folder_digest(parent)
    child = root / "child"
    code = main(["finetune", "--from", str(parent), "--data", str(exported), "--train", "generator",
                 "--out", str(child), "--set", f"out_dir={root / 'runs'}", *FAST_FINETUNE])
    assert code == 0
    return parent, child, before


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


def test_export_since_and_refusals(store, tmp_path):
    assert export_store(store, tmp_path / "future", since="2999-01-01").studies == 0
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ExportStoreError):
        export_store(store, tmp_path / "busy")
    with pytest.raises(ExportStoreError):
        export_store(tmp_path / "missing.sqlite3", tmp_path / "x")


def test_split_buckets_are_stable_and_report_text_joins_addenda():
    assert patient_split("P1") == patient_split("P1")
    assert {patient_split(f"P{k}") for k in range(200)} == {"train", "val", "test"}
    assert report_text.__doc__ and "addendum" in report_text.__doc__


def test_export_store_command(store, tmp_path, capsys):
    assert main(["export-store", "--db", str(store), "--out", str(tmp_path / "cli"), "--deidentify"]) == 0
    assert "7 signed studies" in capsys.readouterr().out


def test_finetune_writes_a_new_bundle_and_never_touches_the_parent(finetuned):
    parent, child, before = finetuned
    assert folder_digest(parent) == before
    parent_card = load_bundle(parent).card
    child_card = load_bundle(child).card  # verifies every hash
    assert child_card.bundle_id != parent_card.bundle_id
    assert child_card.parent.bundle_id == parent_card.bundle_id
    assert child_card.parent.card_sha256 == hashlib.sha256((parent / "card.json").read_bytes()).hexdigest()
    assert child_card.records.training["trained"] == ["generator"]
    assert (parent / "tokenizer.json").read_bytes() == (child / "tokenizer.json").read_bytes()
    # the generator changed, the frozen parts did not
    assert child_card.components["generator"].sha256 != parent_card.components["generator"].sha256
    assert child_card.components["detector"].sha256 == parent_card.components["detector"].sha256


def test_card_records_both_evaluations_on_the_same_split(finetuned):
    _parent, child, _ = finetuned
    card = json.loads((child / "card.json").read_text())
    evaluation = card["finetune_evaluation"]
    assert evaluation["parent"]["studies"] == evaluation["child"]["studies"] >= 1
    assert evaluation["parent"]["bundle_id"] == card["parent"]["bundle_id"]
    assert evaluation["child"]["bundle_id"] == card["bundle_id"]
    for side in ("parent", "child"):
        assert set(evaluation[side]["model"]["nlg"]) >= {"BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr"}
        assert "micro_f1" in evaluation[side]["model"]["ce"]
    assert card["metrics"]["split"] == "local val"


def test_child_drafts_in_the_app_pipeline(finetuned):
    from rrg_desk.imaging import load_studies

    _parent, child, _ = finetuned
    studies, _ = load_studies([samples_dir() / "study2"])
    draft = DraftPipeline(child, device="cpu").draft(studies[0])
    assert draft.bundle_id == json.loads((child / "card.json").read_text())["bundle_id"]
    assert len(draft.findings) == 14


def test_finetune_refuses_to_write_into_the_parent(finetuned, exported, capsys):
    parent, _child, before = finetuned
    code = main(["finetune", "--from", str(parent), "--data", str(exported), "--out", str(parent / "inside"),
                 *FAST_FINETUNE])
    assert code == 2 and "parent" in capsys.readouterr().err
    assert folder_digest(parent) == before


def test_finetune_classifier_and_generator_leaves_the_detector(exported, tmp_path):
    parent = build_random_bundle(tmp_path / "parent", size="tiny", seed=2)
    child = tmp_path / "child"
    fast_clip = ["--set", "finetune.clip_loop={epochs: 1, batch_size: 4, lr: 0.001, warmup_steps: 1, progress: false}"]
    assert main(["finetune", "--from", str(parent), "--data", str(exported), "--train", "classifier+generator",
                 "--out", str(child), "--set", f"out_dir={tmp_path / 'runs'}", *FAST_FINETUNE, *fast_clip]) == 0
    before, after = load_bundle(parent).card.components, load_bundle(child).card.components
    assert after["classifier"].sha256 != before["classifier"].sha256
    assert after["generator"].sha256 != before["generator"].sha256
    assert after["detector"].sha256 == before["detector"].sha256
    assert (tmp_path / "runs" / "child" / "clip" / "best.safetensors").exists()
