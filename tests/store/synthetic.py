"""A synthetic worklist store of any size, written in seconds (the bench and the scale tests).

`fill_store(path, studies)` creates the database through the store (so the schema is the
current one, migrations included) and then bulk-inserts plain rows with one connection and
one transaction: a year of a workstation that reports PER_DAY studies a day, two files per
study, the audit trail every study leaves (imported, opened, drafted, edited, accepted,
flags reviewed, signed, exported, ...), a signed report with its document for each signed
study, the model's draft for every drafted one, a working draft for those in progress.
Rows are what the store itself would write (the JSON comes from the real serialisers); no
image file exists, so only the store is exercised, never the readers.

The newest studies (the last UNSIGNED_DAYS days) are waiting to be reported, plus a few
older stragglers; the rest are signed (a few amended). Audit entries of one study are
spread among the entries of its day, as they are in use. With `outbox_payload_bytes` every
signed report also sits in the PACS outbox as sent (an SR of that many bytes), as at a site
that sends every report to its PACS.
"""
from __future__ import annotations

import json
import random
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from rrg_desk.store import Database

PER_DAY = 50
UNSIGNED_DAYS = 3
STRAGGLER_EVERY = 50  # one older study in 50 is still unsigned
AMENDED_EVERY = 40
STUDIES_PER_PATIENT = 2.5
END_DATE = date(2026, 11, 30)
SURNAMES = ("SMITH JONES TAYLOR BROWN WILLIAMS WILSON JOHNSON DAVIES ROBINSON WRIGHT THOMPSON EVANS WALKER WHITE "
            "ROBERTS GREEN HALL WOOD JACKSON CLARKE PATEL KHAN LEWIS JAMES PHILLIPS MASON MITCHELL ROSE DAVIS "
            "RODRIGUEZ COX ALEXANDER GARDEN CAMPBELL JOHNSTON MOORE SMYTHE OBRIEN MURPHY KELLY NGUYEN TRAN LE "
            "MULLER SCHMIDT SCHNEIDER FISCHER WEBER MEYER WAGNER BECKER").split()
GIVEN_NAMES = ("OLIVER GEORGE HARRY JACK NOAH LEO ARTHUR MUHAMMAD OSCAR CHARLIE OLIVIA AMELIA ISLA AVA MIA IVY "
               "LILY ISABELLA ROSIE SOPHIA GRACE FREYA ELLA EVIE POPPY").split()
DESCRIPTIONS = ("XR CHEST PA AND LATERAL", "XR CHEST PA", "XR CHEST AP PORTABLE", "XR CHEST AP SUPINE",
                "XR CHEST PA AND LATERAL FOLLOW-UP")
# one study's trail, in order (a signed study gets all of it; unsigned ones stop earlier)
TRAIL = ("imported", "opened", "drafted", "edited", "accepted", "accepted", "rejected", "edited", "accepted_all",
         "flags_reviewed", "signed", "exported", "opened", "exported")
USERS = ("dr.adams", "dr.baker", "dr.chen", "dr.diaz", "dr.evans")


@dataclass
class SyntheticStore:
    path: Path
    studies: int
    audit_rows: int
    uids: list[str] = field(default_factory=list)  # in insertion (date) order
    patient_ids: list[str] = field(default_factory=list)  # per study

    def uid(self, fraction: float) -> str:
        """A study part-way through the year (0.0 oldest, 1.0 newest)."""
        return self.uids[min(int(fraction * len(self.uids)), len(self.uids) - 1)]


def study_uid(i: int) -> str:
    return f"1.2.826.0.1.3680043.10.999.{i + 1}"


def _status(i: int, n: int) -> str:
    if i >= n - UNSIGNED_DAYS * PER_DAY:
        return ("new", "drafted", "in_progress")[i % 3]
    if i % STRAGGLER_EVERY == 7:
        return "in_progress"
    return "amended" if i % AMENDED_EVERY == 3 else "signed"


def _templates() -> tuple[str, str]:
    """(model draft JSON, report document JSON) as the store writes them, uid 'UID'."""
    from rrg_desk.reports.document import ReportDocument
    from tests.reports.synthetic import make_draft

    draft = make_draft("UID")
    return (json.dumps(draft.to_dict(), separators=(",", ":")),
            json.dumps(ReportDocument.from_draft(draft).to_dict()))


def fill_store(path: str | Path, studies: int, audit_per_study: int = 40, seed: int = 0,
               outbox_payload_bytes: int = 0) -> SyntheticStore:
    """Create `path` (which must not exist) holding `studies` synthetic studies and about
    `audit_per_study` audit entries for each signed one (fewer for those still open)."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(path)
    with Database.open(path) as db:  # the real schema, every migration applied
        db.mark_clean_shutdown()
        if outbox_payload_bytes:
            from rrg_desk.pacs import Outbox

            Outbox(db).close()  # the PACS package's own tables and migrations
    rng = random.Random(seed)
    draft_template, document_template = _templates()
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    out = SyntheticStore(path, studies, 0)
    n_patients = max(1, int(studies / STUDIES_PER_PATIENT))
    study_rows, file_rows, audit_rows, signed_rows, model_rows, draft_rows, outbox_rows = [], [], [], [], [], [], []
    payload = bytes(outbox_payload_bytes)
    report_id = 0
    days = (studies + PER_DAY - 1) // PER_DAY
    for day in range(days):
        day_date = END_DATE - timedelta(days=days - 1 - day)
        stamp = day_date.isoformat()
        block = range(day * PER_DAY, min((day + 1) * PER_DAY, studies))
        trails = {}
        for i in block:
            uid = study_uid(i)
            patient = rng.randrange(n_patients)
            rng_name = random.Random(patient)
            name = f"{rng_name.choice(SURNAMES)}^{rng_name.choice(GIVEN_NAMES)}"
            patient_id = f"PID{patient:07d}"
            accession = f"ACC{i + 1:08d}"
            status = _status(i, studies)
            at = f"{stamp}T08:{i % 60:02d}:00.000000+00:00"
            study_rows.append((uid, name, patient_id, f"19{40 + patient % 60:02d}0{1 + patient % 9}1{patient % 10}",
                               "MF"[patient % 2], day_date.strftime("%Y%m%d"), accession,
                               DESCRIPTIONS[i % len(DESCRIPTIONS)], "DX", status, at, at))
            folder = f"/archive/{day_date:%Y/%m/%d}/{accession}"
            file_rows += [(uid, f"{folder}/pa.dcm", f"{uid}.1", "PA"), (uid, f"{folder}/lat.dcm", f"{uid}.2", "LATERAL")]
            out.uids.append(uid)
            out.patient_ids.append(patient_id)
            user = USERS[i % len(USERS)]
            if status in ("signed", "amended"):
                report_id += 1
                findings = "The heart is enlarged. The lungs are clear."
                signed_rows.append((report_id, uid, "report", None, findings, "Cardiomegaly.", "",
                                    document_template.replace("UID", uid), user, at, f"{report_id:064x}", "[]"))
                if payload:
                    outbox_rows.append((uid, report_id, "pacs", f"{uid}.9", payload, at, at, at))
                if status == "amended":
                    parent = report_id
                    report_id += 1
                    signed_rows.append((report_id, uid, "addendum", parent, "", "", "Compared with prior: unchanged.",
                                        None, user, at, f"{report_id:064x}", "[]"))
                trail = list(TRAIL) + ["opened"] * max(0, audit_per_study - len(TRAIL))
            else:
                trail = list(TRAIL[:(2, 4, 8)[i % 3]])
            if status != "new":
                model_rows.append((uid, draft_template.replace("UID", uid), "default", at))
            if status == "in_progress":
                draft_rows.append((uid, document_template.replace("UID", uid), user, at, 0))
            trails[uid] = (user, trail[:audit_per_study])
        # the day's entries interleaved: step k of every study, then step k + 1, ...
        longest = max((len(t) for _u, t in trails.values()), default=0)
        for k in range(longest):
            for uid, (user, trail) in trails.items():
                if k < len(trail):
                    audit_rows.append((f"{stamp}T{8 + k // 6:02d}:{k % 6 * 10:02d}:00.000000+00:00", uid, user,
                                       trail[k], '{"synthetic":true}'))
    conn.executemany("INSERT INTO studies (study_uid, patient_name, patient_id, birth_date, sex, study_date, "
                     "accession, description, modality, status, imported_at, updated_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", study_rows)
    conn.executemany("INSERT INTO study_files (study_uid, path, sop_instance_uid, view) VALUES (?, ?, ?, ?)",
                     file_rows)
    conn.executemany("INSERT INTO audit_log (at, study_uid, user, action, detail_json) VALUES (?, ?, ?, ?, ?)",
                     audit_rows)
    conn.executemany("INSERT INTO signed_reports (id, study_uid, kind, parent_id, findings_text, impression_text, "
                     "addendum_text, document_json, signer, signed_at, sha256, flags_json) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", signed_rows)
    conn.executemany("INSERT INTO model_drafts (study_uid, draft_json, bundle_id, created_at) VALUES (?, ?, ?, ?)",
                     model_rows)
    conn.executemany("INSERT INTO drafts (study_uid, document_json, saved_by, saved_at, saved_at_ns) "
                     "VALUES (?, ?, ?, ?, ?)", draft_rows)
    if outbox_rows:
        conn.executemany("INSERT INTO pacs_outbox (study_uid, report_id, server_name, sop_instance_uid, payload, "
                         "status, attempts, created_at, last_attempt_at, sent_at) "
                         "VALUES (?, ?, ?, ?, ?, 'sent', 1, ?, ?, ?)", outbox_rows)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    out.audit_rows = len(audit_rows)
    return out


def synthetic_store_fixtures(studies: int, audit_per_study: int):
    """Fixtures for a test module: `synthetic_path`, a store of `studies` filled once per
    module, and an opened Database on a fresh copy of it for each test (tests may write).

        synthetic_path, db = synthetic_store_fixtures(1_000, audit_per_study=4)
    """
    import pytest  # here, not at the top: bench/bench_worklist.py imports this module without pytest

    @pytest.fixture(scope="module", name="synthetic_path")
    def filled(tmp_path_factory) -> Path:
        return fill_store(tmp_path_factory.mktemp("synthetic") / "store.sqlite3", studies,
                          audit_per_study=audit_per_study).path

    @pytest.fixture
    def opened_copy(synthetic_path: Path, tmp_path: Path):
        path = tmp_path / "store.sqlite3"
        shutil.copy(synthetic_path, path)
        with Database.open(path) as database:
            yield database

    return filled, opened_copy
