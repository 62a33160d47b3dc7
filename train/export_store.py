"""Signed reports of the workstation's store -> an R2Gen-layout dataset the trainer reads.

    python -m train export-store --db PATH --out DIR [--deidentify] [--since YYYY-MM-DD]

Writes `DIR/annotation.json` ({train, val, test: [{id, report, image_path, ...}]}),
`DIR/images/<id>/<n>.png` (every image read with rrg_desk.imaging and windowed to 8 bits,
frontal views first) and `DIR/export.json` (what was exported, skipped and why).

The report is the latest signed text: the signed findings and impression followed by every
signed addendum. The split is by patient and stable: a patient's bucket comes from a hash of
their id, so a patient never moves between splits when the store grows (a later fine-tune
never validates on what an earlier one trained on).

The store keeps no radiologist-drawn boxes (describe-a-region boxes are not persisted), so no
boxes are exported; each entry carries the sentence -> region links of the signed document
("sentence_regions"), which the radiologist kept or corrected while editing.

The database is opened read-only: exporting never registers as a workstation session (which
would disturb the app's crash recovery) and never writes to it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import shutil
import sys
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from rrg_desk.imaging import ImageReadError, apply_window, read_image
from rrg_desk.store.records import SignedReport
from rrg_desk.store.schema import SCHEMA_VERSION

log = logging.getLogger(__name__)

SPLIT_BUCKETS = (("train", 80), ("val", 90), ("test", 100))  # hash bucket (0-99) upper bounds
NO_BOXES_NOTE = ("the store keeps no radiologist-drawn region boxes; sentence -> region links of the "
                 "signed documents are exported as sentence_regions")
_FRONTAL_VIEWS = ("PA", "AP")


class ExportStoreError(Exception):
    """The store cannot be exported; `user_message` says why."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


@dataclass
class ExportSummary:
    out: Path
    studies: int = 0
    images: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)  # {"study": ..., "reason": ...}
    deidentified: bool = False
    region_boxes: str = NO_BOXES_NOTE

    def to_dict(self) -> dict:
        return {**asdict(self), "out": str(self.out)}


def _connect_read_only(db_path: Path) -> sqlite3.Connection:
    if not db_path.is_file():
        raise ExportStoreError(f"No workstation database at {db_path}.")
    conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    version = conn.execute("SELECT version FROM schema_version").fetchone()
    if version is None or int(version[0]) != SCHEMA_VERSION:
        conn.close()
        raise ExportStoreError(f"{db_path} has schema version {version and version[0]}; this exporter reads "
                               f"version {SCHEMA_VERSION}. Open the database once with this RRG Desk first.")
    return conn


def _signed_by_study(conn: sqlite3.Connection, since: str | None) -> dict[str, list[SignedReport]]:
    """study uid -> [report, addenda...] for studies whose report was signed on/after `since`."""
    rows = conn.execute(
        "SELECT id, study_uid, kind, parent_id, findings_text, impression_text, addendum_text, document_json, "
        "signer, signed_at, sha256, flags_json FROM signed_reports ORDER BY study_uid, id").fetchall()
    grouped: dict[str, list[SignedReport]] = {}
    for r in rows:
        grouped.setdefault(r[1], []).append(SignedReport(
            id=r[0], study_uid=r[1], kind=r[2], parent_id=r[3], findings_text=r[4], impression_text=r[5],
            addendum_text=r[6], document=json.loads(r[7]) if r[7] else None, signer=r[8], signed_at=r[9],
            sha256=r[10], flags_reviewed=json.loads(r[11])))
    if since:
        grouped = {uid: reports for uid, reports in grouped.items() if reports[0].signed_at[:len(since)] >= since}
    return grouped


def report_text(reports: list[SignedReport]) -> str:
    """The latest signed text: findings, impression, then each addendum (one paragraph)."""
    original = reports[0]
    parts = [original.findings_text, original.impression_text, *(r.addendum_text for r in reports[1:])]
    return " ".join(" ".join(p.split()) for p in parts if p.strip())


def sentence_regions(reports: list[SignedReport]) -> list[list[str]]:
    """[[region, sentence], ...] as linked in the signed document (radiologist-reviewed)."""
    document = reports[0].document or {}
    pairs = []
    for section in ("findings", "impression"):
        for sentence in document.get(section, []):
            if sentence.get("region") and sentence.get("text"):
                pairs.append([sentence["region"], sentence["text"]])
    return pairs


def _unsalted(patient_key: str) -> str:
    """Decides the split only (never exported): independent of any secret, so stable."""
    return hashlib.sha256(patient_key.encode("utf-8")).hexdigest()


def patient_split(patient_key: str) -> str:
    bucket = int(_unsalted(patient_key), 16) % 100
    return next(name for name, upper in SPLIT_BUCKETS if bucket < upper)


def _ensure_val_and_test(entries: list[dict]) -> None:
    """A small store may hash nobody into val/test; move whole train patients there (by hash,
    so the choice is deterministic) while train keeps at least one patient."""
    for split in ("val", "test"):
        if any(e["split"] == split for e in entries):
            continue
        train_patients = sorted({e["_patient_hash"] for e in entries if e["split"] == "train"})
        if len(train_patients) < 2:
            return
        moved = train_patients[-1]
        for e in entries:
            if e["_patient_hash"] == moved:
                e["split"] = split


def _write_png(source: Path, target: Path) -> None:
    image = read_image(source)
    pixels = apply_window(image.pixels, image.display_window())  # display orientation, 8-bit
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(target)


def export_store(db_path: str | Path, out: str | Path, deidentify: bool = False,
                 since: str | None = None) -> ExportSummary:
    """Export every signed study (signed on/after `since`, ISO date) into `out` (R2Gen layout)."""
    db_path, out = Path(db_path), Path(out)
    if since:
        datetime.fromisoformat(since)  # ValueError for a malformed date, before any work
    if out.exists() and any(out.iterdir()) and not (out / "annotation.json").exists():
        raise ExportStoreError(f"{out} exists and is not an earlier export; choose an empty folder.")
    conn = _connect_read_only(db_path)
    try:
        signed = _signed_by_study(conn, since)
        secret_row = conn.execute("SELECT value FROM app_state WHERE key = 'installation_secret'").fetchone()
        studies = {r[0]: r for r in conn.execute(
            "SELECT study_uid, patient_id, patient_name, study_date FROM studies")}
        files: dict[str, list[tuple[str, str]]] = {}
        for uid, path, view in conn.execute("SELECT study_uid, path, view FROM study_files ORDER BY rowid"):
            files.setdefault(uid, []).append((path, view))
    finally:
        conn.close()
    # Salted with the installation secret: hashes of guessable ids must not be reversible.
    salt = secret_row[0] if secret_row else secrets.token_hex(16)
    if deidentify and not secret_row:
        log.warning("the database has no installation secret; pseudonyms differ from one export to the next")

    def pseudonym(value: str) -> str:
        return hashlib.sha256(f"{salt}:{value}".encode("utf-8")).hexdigest()[:16]

    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    summary = ExportSummary(out=out, deidentified=deidentify)
    entries = []
    for number, (uid, reports) in enumerate(sorted(signed.items())):
        if not all(r.verify() for r in reports):
            summary.skipped.append({"study": pseudonym(uid) if deidentify else uid,
                                    "reason": "signed text does not match its checksum"})
            continue
        _uid, patient_id, _name, study_date = studies.get(uid, (uid, "", "", ""))
        patient_key = patient_id or uid
        entry_id = pseudonym(uid) if deidentify else f"study{number:05d}"
        ordered = sorted(files.get(uid, []), key=lambda pv: pv[1] not in _FRONTAL_VIEWS)  # frontal first
        image_paths, views = [], []
        for path, view in ordered:
            relative = f"{entry_id}/{len(image_paths)}.png"
            try:
                _write_png(Path(path), staging / "images" / relative)
            except (ImageReadError, OSError) as exc:
                log.warning("study %s: image %s skipped (%s)", entry_id, path if not deidentify else "?", exc)
                continue
            image_paths.append(relative)
            views.append(view)
        if not image_paths:
            summary.skipped.append({"study": entry_id, "reason": "no readable image (moved or deleted?)"})
            continue
        entry = {"id": entry_id, "report": report_text(reports), "image_path": image_paths,
                 "view": views[0], "views": views, "findings": reports[0].findings_text,
                 "impression": reports[0].impression_text,
                 "addenda": [r.addendum_text for r in reports[1:]],
                 "sentence_regions": sentence_regions(reports), "report_sha256": reports[0].sha256,
                 "patientid": pseudonym(patient_key) if deidentify else patient_key,
                 "signed_at": reports[-1].signed_at[:10] if deidentify else reports[-1].signed_at,
                 "_patient_hash": _unsalted(patient_key)}
        if not deidentify:
            entry.update(study_uid=uid, study_date=study_date, signer=reports[0].signer)
        entry["split"] = patient_split(patient_key)
        entries.append(entry)
    _ensure_val_and_test(entries)
    annotation: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for entry in entries:
        entry.pop("_patient_hash")
        annotation[entry["split"]].append(entry)
    summary.studies = len(entries)
    summary.images = sum(len(e["image_path"]) for e in entries)
    summary.splits = {k: len(v) for k, v in annotation.items()}
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "annotation.json").write_text(json.dumps(annotation, indent=1, ensure_ascii=False), encoding="utf-8")
    manifest = {**summary.to_dict(), "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "since": since, "database": "(de-identified)" if deidentify else str(db_path.resolve())}
    (staging / "export.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)  # an earlier export (checked above): replaced as a whole
    out.parent.mkdir(parents=True, exist_ok=True)
    staging.replace(out)
    log.info("exported %d signed studies (%d images) to %s", summary.studies, summary.images, out)
    return summary


def main_export_store(args) -> int:
    """`python -m train export-store` (arguments registered in train/cli.py)."""
    from rrg_desk.paths import user_data_dir
    from rrg_desk.store import DATABASE_FILE_NAME

    db = args.db or user_data_dir() / DATABASE_FILE_NAME
    try:
        summary = export_store(db, args.out, deidentify=args.deidentify, since=args.since)
    except (ExportStoreError, ValueError, sqlite3.Error) as exc:
        print(f"python -m train export-store: {getattr(exc, 'user_message', exc)}", file=sys.stderr)
        return 2
    print(f"{summary.studies} signed studies, {summary.images} images -> {summary.out} "
          f"(train {summary.splits['train']}, val {summary.splits['val']}, test {summary.splits['test']})")
    for skipped in summary.skipped:
        print(f"skipped {skipped['study']}: {skipped['reason']}")
    print(f"region boxes: {summary.region_boxes}")
    return 0
