"""The process that gets killed: the Qt-free Session autosaving, signing, exporting and
importing in a loop, as fast as it can, until the parent SIGKILLs it.

    python -m fuzz.crash_child DB EVENTS_FILE EXPORT_DIR IMPORT_DIR SEED

EVENTS_FILE (JSON lines, append-only) records "begin" before each action and the outcome
only AFTER the call returned: "autosaved" (with the text), "signed" (with the report's id
and sha256, written only once sign() returned), "exported". A line is flushed to the OS at
once, which survives SIGKILL (only a power cut could lose it).
"""
from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

from rrg_desk.app.session import Session
from rrg_desk.app.settings import AppSettings
from rrg_desk.models.findings import FINDING_NAMES, NO_FINDING
from rrg_desk.reports.draft import Draft, FindingResult, RegionResult, Sentence
from rrg_desk.reports.export import ExportError
from rrg_desk.store import SIGNED_STATUSES, Database, StoreError
from rrg_desk.thresholds import DEFAULT_THRESHOLD

SIGNER = "Dr Crash Test"
EXPORT_FORMATS = ["txt", "json", "fhir", "sr", "png"]


def synthetic_draft(study_uid: str) -> Draft:
    """What a model would hand over (regions, findings, two sentences), without a model."""
    probs = {name: 0.1 for name in FINDING_NAMES} | {"Cardiomegaly": 0.8, NO_FINDING: 0.2}
    heat = np.linspace(0.0, 1.0, 64, dtype=np.float32).reshape(8, 8)
    return Draft(
        study_uid=study_uid,
        regions=[RegionResult("heart", (150.0, 250.0, 300.0, 400.0), 0.9, True, 0.7),
                 RegionResult("right_lung", (40.0, 60.0, 200.0, 420.0), 0.95, True, 0.2)],
        findings=[FindingResult(name, probs[name], DEFAULT_THRESHOLD) for name in FINDING_NAMES],
        sentences=[Sentence("The heart is enlarged.", "heart", heat),
                   Sentence("The lungs are clear.", "right_lung", heat[::-1].copy())],
        findings_text="The heart is enlarged. The lungs are clear.", impression_text="Cardiomegaly.",
        bundle_id="crash-test", finding_heatmaps={"Cardiomegaly": heat})


def write_study(folder: Path, rng: random.Random) -> Path:
    """A small new DICOM study (fresh UIDs) to import."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.1", generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "CR", f"CRASH^{rng.randrange(10**6)}", f"C-{rng.randrange(10**6)}"
    ds.PatientBirthDate, ds.StudyDate, ds.ViewPosition = "19600101", "20240301", "PA"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation, ds.Rows, ds.Columns = 7, 0, 64, 64
    if rng.random() < 0.5:  # type-2 attributes real files sometimes lack
        ds.AccessionNumber, ds.StudyID, ds.StudyTime, ds.ReferringPhysicianName = "CRASH1", "1", "120000", ""
    ds.PixelData = (np.add.outer(np.arange(64), np.arange(64)) % 256).astype(np.uint8).tobytes()
    ds["PixelData"].VR = "OB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID, ds.file_meta.ImplementationClassUID = ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID
    path = folder / f"{ds.StudyInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


class EventLog:
    def __init__(self, path: Path, run: int) -> None:
        self._handle = open(path, "a", encoding="utf-8")
        self.run = run

    def write(self, event: str, **fields) -> None:
        self._handle.write(json.dumps({"event": event, "run": self.run, **fields}) + "\n")
        self._handle.flush()  # in the kernel's page cache now: SIGKILL cannot lose it


def main(argv: list[str]) -> int:
    db_path, events_path, export_dir, import_dir, seed = (Path(argv[0]), Path(argv[1]), Path(argv[2]),
                                                          Path(argv[3]), int(argv[4]))
    rng = random.Random(seed)
    db = Database.open(db_path)
    session = Session(db, AppSettings(user_name=SIGNER, autosave_seconds=0.2, auto_draft=False))
    log = EventLog(events_path, seed)
    print("ready", flush=True)
    edit = 0
    while True:
        todo = [s.study_uid for s in db.list_studies() if s.status not in SIGNED_STATUSES]
        signed = [s.study_uid for s in db.list_studies() if s.status in SIGNED_STATUSES]
        roll = rng.random()
        if not todo or roll < 0.05:
            log.write("begin", action="import")
            records, _ = db.import_studies([write_study(import_dir, rng)])
            log.write("imported", study=records[0].study_uid)
            continue
        if signed and roll < 0.10:
            uid = rng.choice(signed)
            session.open_study(uid)
            log.write("begin", action="addendum", study=uid)
            addendum = session.add_addendum(f"Addendum {seed}-{edit}: compared with prior.")
            log.write("signed", study=uid, report_id=addendum.id, sha256=addendum.sha256, kind="addendum",
                      text=addendum.addendum_text)
            continue
        uid = rng.choice(todo)
        session.open_study(uid)
        if session.draft is None:
            session.apply_draft(synthetic_draft(uid))
        for _ in range(rng.randint(1, 6)):
            edit += 1
            text = f"Run {seed} edit {edit}: " + " ".join(rng.choice(["Heart", "enlarged.", "Lungs", "clear."])
                                                          for _ in range(rng.randint(3, 40)))
            session.edit("findings", text)
            log.write("begin", action="autosave", study=uid, text=text)
            session.autosave()
            log.write("autosaved", study=uid, text=text)
        roll = rng.random()
        if roll < 0.15:
            log.write("begin", action="export", study=uid)
            try:
                written = session.export(EXPORT_FORMATS, export_dir, anonymise=rng.random() < 0.5)
            except ExportError as error:  # the app shows the message and keeps the report
                log.write("export_failed", study=uid, message=error.user_message)
            else:
                log.write("exported", study=uid, files=[str(p) for p in written.values()])
        elif roll < 0.45:
            session.accept_all()
            log.write("begin", action="sign", study=uid)
            report = session.sign(reviewed_flags=session.check_before_sign())
            log.write("signed", study=uid, report_id=report.id, sha256=report.sha256, kind="report",
                      findings=report.findings_text, impression=report.impression_text)
        time.sleep(0)  # let the parent's timer fire between actions too


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except StoreError as error:  # e.g. the disk filled up: say so, as the app would
        print(f"store error: {error.user_message}", file=sys.stderr)
        sys.exit(3)
