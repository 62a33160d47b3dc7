"""Signed reports of the store -> an R2Gen-layout dataset the trainer reads.

    export_store(db_path, out, deidentify=False, since=None) -> ExportSummary

Used by `python -m train export-store` and by the app's "Export signed reports for training".
Writes `out/annotation.json` ({train, val, test: [{id, report, image_path, ...}]}),
`out/images/<id>/<n>.png` (every image read with rrg_desk.imaging and windowed to 8 bits,
frontal views first) and `out/export.json` (what was exported, skipped and why).

The report is the latest signed text: the signed findings and impression followed by every
signed addendum. The split is by patient and stable: a patient's bucket comes from a hash of
their id, so a patient never moves between splits when the store grows (a later fine-tune
never validates on what an earlier one trained on).

The store keeps no radiologist-drawn boxes (describe-a-region boxes are not persisted), so no
boxes are exported; each entry carries the sentence -> region links of the signed document
("sentence_regions"), which the radiologist kept or corrected while editing.

The database is opened read-only (sqlite `mode=ro`, not through `Database`): exporting never
registers as a workstation session (which would disturb the app's crash recovery) and never
writes to it, so it is safe while the app runs.
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import shutil
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from rrg_desk.imaging import ImageReadError, apply_window, read_image
from rrg_desk.store import worklist
from rrg_desk.store.errors import StoreError, mapped_errors
from rrg_desk.store.records import SignedReport, StudyRecord
from rrg_desk.store.schema import SCHEMA_VERSION
from rrg_desk.store.signoff import all_signed_reports

log = logging.getLogger(__name__)

SPLIT_BUCKETS = (("train", 80), ("val", 90), ("test", 100))  # hash bucket (0-99) upper bounds
NO_BOXES_NOTE = ("the store keeps no radiologist-drawn region boxes; sentence -> region links of the "
                 "signed documents are exported as sentence_regions")
_FRONTAL_VIEWS = ("PA", "AP")


class ExportStoreError(StoreError):
    """The store cannot be exported; the message says why."""


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

    def lines(self) -> list[str]:
        """What was exported and skipped, as the command prints it."""
        counts = ", ".join(f"{split} {self.splits.get(split, 0)}" for split in ("train", "val", "test"))
        return [f"{self.studies} signed studies, {self.images} images -> {self.out} ({counts})",
                *(f"skipped {skipped['study']}: {skipped['reason']}" for skipped in self.skipped),
                f"region boxes: {self.region_boxes}"]


@dataclass(frozen=True)
class _StoreContent:
    """What an export reads from the store, in one read-only pass."""

    signed: dict[str, list[SignedReport]]  # study uid -> [report, addenda...]
    studies: dict[str, StudyRecord]
    views: dict[tuple[str, str], str]  # (study uid, file path) -> view position
    installation_secret: str | None


def _connect_read_only(db_path: Path) -> sqlite3.Connection:
    if not db_path.is_file():
        raise ExportStoreError(f"No workstation database at {db_path}.")
    conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        version = conn.execute("SELECT version FROM schema_version").fetchone()
    except sqlite3.OperationalError:  # no schema_version table: not (yet) a workstation database
        version = None
    except BaseException:
        conn.close()
        raise
    if version is None or int(version[0]) != SCHEMA_VERSION:
        conn.close()
        raise ExportStoreError(f"{db_path} has schema version {version and version[0]}; this exporter reads "
                               f"version {SCHEMA_VERSION}. Open the database once with this RRG Desk first.")
    return conn


def _utc(moment: datetime) -> datetime:
    """`moment` made comparable with the stored times (UTC) when it names no zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _signed_day(report: SignedReport) -> str:
    """YYYY-MM-DD (UTC) of the signature: all a de-identified export keeps of its time."""
    return datetime.fromisoformat(report.signed_at).date().isoformat()


def _read_store(db_path: Path, since: datetime | None) -> _StoreContent:
    """The studies whose report was signed at or after `since`, with their reports and files."""
    with mapped_errors("reading the database to export"):
        conn = _connect_read_only(db_path)
        try:
            signed: dict[str, list[SignedReport]] = {}
            for report in all_signed_reports(conn):
                signed.setdefault(report.study_uid, []).append(report)
            if since is not None:
                signed = {uid: reports for uid, reports in signed.items()
                          if datetime.fromisoformat(reports[0].signed_at) >= since}
            studies = {record.study_uid: record for record in worklist.records(conn, list(signed))}
            views = {(uid, path): view for uid, path, view in
                     conn.execute("SELECT study_uid, path, view FROM study_files")}
            secret = conn.execute("SELECT value FROM app_state WHERE key = 'installation_secret'").fetchone()
        finally:
            conn.close()
    return _StoreContent(signed, studies, views, secret[0] if secret else None)


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


class _Pseudonyms:
    """Salted with the installation secret: hashes of guessable ids must not be reversible."""

    def __init__(self, installation_secret: str | None, deidentify: bool) -> None:
        self.salt = installation_secret or secrets.token_hex(16)
        if deidentify and not installation_secret:
            log.warning("the database has no installation secret; pseudonyms differ from one export to the next")

    def __call__(self, value: str) -> str:
        return hashlib.sha256(f"{self.salt}:{value}".encode("utf-8")).hexdigest()[:16]


def _write_images(paths_and_views: list[tuple[str, str]], entry_id: str, images_dir: Path,
                  deidentify: bool) -> tuple[list[str], list[str]]:
    """The study's readable images as PNGs, frontal views first: (relative paths, views)."""
    ordered = sorted(paths_and_views, key=lambda pv: pv[1] not in _FRONTAL_VIEWS)
    image_paths, views = [], []
    for path, view in ordered:
        relative = f"{entry_id}/{len(image_paths)}.png"
        try:
            _write_png(Path(path), images_dir / relative)
        except (ImageReadError, OSError) as exc:
            log.warning("study %s: image %s skipped (%s)", entry_id, path if not deidentify else "?", exc)
            continue
        image_paths.append(relative)
        views.append(view)
    return image_paths, views


class _Skipped(Exception):
    def __init__(self, study: str, reason: str) -> None:
        super().__init__(reason)
        self.row = {"study": study, "reason": reason}


def _study_entry(number: int, uid: str, reports: list[SignedReport], content: _StoreContent,
                 pseudonym: _Pseudonyms, images_dir: Path, deidentify: bool) -> dict:
    """The annotation entry of one signed study, its images written; _Skipped says why not."""
    if not all(r.verify() for r in reports):
        raise _Skipped(pseudonym(uid) if deidentify else uid, "signed text does not match its checksum")
    record = content.studies.get(uid, StudyRecord(study_uid=uid))
    patient_key = record.patient_id or uid
    entry_id = pseudonym(uid) if deidentify else f"study{number:05d}"
    files = [(path, content.views.get((uid, path), "")) for path in record.file_paths]
    image_paths, views = _write_images(files, entry_id, images_dir, deidentify)
    if not image_paths:
        raise _Skipped(entry_id, "no readable image (moved or deleted?)")
    entry = {"id": entry_id, "report": report_text(reports), "image_path": image_paths,
             "view": views[0], "views": views, "findings": reports[0].findings_text,
             "impression": reports[0].impression_text,
             "addenda": [r.addendum_text for r in reports[1:]],
             "sentence_regions": sentence_regions(reports), "report_sha256": reports[0].sha256,
             "patientid": pseudonym(patient_key) if deidentify else patient_key,
             "signed_at": _signed_day(reports[-1]) if deidentify else reports[-1].signed_at,
             "_patient_hash": _unsalted(patient_key)}
    if not deidentify:
        entry.update(study_uid=uid, study_date=record.study_date, signer=reports[0].signer)
    entry["split"] = patient_split(patient_key)
    return entry


def _split(entries: list[dict], summary: ExportSummary) -> dict[str, list[dict]]:
    """Entries by split, every split represented when the store allows it; counts the summary."""
    _ensure_val_and_test(entries)
    annotation: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for entry in entries:
        entry.pop("_patient_hash")
        annotation[entry["split"]].append(entry)
    summary.studies = len(entries)
    summary.images = sum(len(e["image_path"]) for e in entries)
    summary.splits = {k: len(v) for k, v in annotation.items()}
    return annotation


def _publish(staging: Path, out: Path, annotation: dict, manifest: dict) -> None:
    """Write the JSON files into the staging folder, then let it replace `out` as a whole."""
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "annotation.json").write_text(json.dumps(annotation, indent=1, ensure_ascii=False), encoding="utf-8")
    (staging / "export.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)  # an earlier export (checked before any work): replaced as a whole
    out.parent.mkdir(parents=True, exist_ok=True)
    staging.replace(out)


def export_store(db_path: str | Path, out: str | Path, deidentify: bool = False,
                 since: str | None = None) -> ExportSummary:
    """Export every signed study (signed on/after `since`, ISO date) into `out` (R2Gen layout).

    ExportStoreError (a StoreError) when the database or the folder cannot be used."""
    db_path, out = Path(db_path), Path(out)
    since_utc = None
    if since:
        try:
            since_utc = _utc(datetime.fromisoformat(since))
        except ValueError as exc:  # before any work
            raise ExportStoreError(f"{since!r} is not a date: give it as YYYY-MM-DD.") from exc
    if out.exists() and any(out.iterdir()) and not (out / "annotation.json").exists():
        raise ExportStoreError(f"{out} exists and is not an earlier export; choose an empty folder.")
    content = _read_store(db_path, since_utc)
    pseudonym = _Pseudonyms(content.installation_secret, deidentify)
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    summary = ExportSummary(out=out, deidentified=deidentify)
    entries = []
    for number, (uid, reports) in enumerate(sorted(content.signed.items())):
        try:
            entries.append(_study_entry(number, uid, reports, content, pseudonym, staging / "images", deidentify))
        except _Skipped as skipped:
            summary.skipped.append(skipped.row)
    annotation = _split(entries, summary)
    manifest = {**summary.to_dict(), "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "since": since, "database": "(de-identified)" if deidentify else str(db_path.resolve())}
    _publish(staging, out, annotation, manifest)
    log.info("exported %d signed studies (%d images) to %s", summary.studies, summary.images, out)
    return summary
