"""Send a signed report to the PACS as a DICOM SR (STOW-RS), through the outbox.

    send_signed_report(db, client, study_uid, user) -> DeliveryResult
    retry_outbox(db, client_for, user="") -> list[DeliveryResult]

The SR is built once from the signed rows (report + addenda) and queued with its bytes; a
failed send stays queued and is retried later. Every attempt, failed or not, is written to
the store's audit log (action "exported", detail destination="pacs", outcome, attempt).
"""
from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pydicom
from pydicom.dataset import Dataset

from rrg_desk.pacs.client import PacsClient
from rrg_desk.pacs.errors import PacsError, PacsSettingsError
from rrg_desk.pacs.outbox import Outbox, OutboxEntry
from rrg_desk.reports.document import ReportDocument
from rrg_desk.reports.export import ExportError, dicom_sr
from rrg_desk.reports.export.dicom_sr import sr_bytes
from rrg_desk.store import AuditAction, Database, StoreError
from rrg_desk.store.signoff import signed_report_meta

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryResult:
    entry: OutboxEntry
    error: PacsError | None = None

    @property
    def sent(self) -> bool:
        return self.entry.status == "sent"

    @property
    def message(self) -> str:
        if self.sent:
            return f"The report was stored on PACS '{self.entry.server_name}'."
        reason = self.error.user_message if self.error else self.entry.last_error
        return f"The report is queued for PACS '{self.entry.server_name}' and will be sent again later. {reason}"


def signed_report_sr(db: Database, study_uid: str, organisation: str = "") -> tuple[Dataset, int]:
    """The SR of the study's signed report with its addenda; and the newest signed row id.

    An addendum makes a new SR version (a new SOP instance, queued separately) whose
    Predecessor Documents Sequence references the earlier versions; the same version always
    has the same SOP Instance UID (derived from the signed rows, reports/export/dicom_sr.py).
    `organisation` (settings) names the signers' organisation in the SR."""
    try:
        history = db.signed_history(study_uid)
        original = history.original
        if original is None or original.document is None:
            raise PacsSettingsError("Only a signed report can be sent to the PACS; sign it first.")
        study = db.load_study(study_uid)
        meta = signed_report_meta(study, history, db.installation_secret(), organisation)
        return dicom_sr(ReportDocument.from_dict(original.document), meta, study.images), history.versions[-1].id
    except (StoreError, ExportError) as exc:
        raise PacsError(f"The report could not be prepared for the PACS: {exc.user_message}") from exc


def deliver(db: Database, outbox: Outbox, entry: OutboxEntry, client: PacsClient, user: str = "") -> DeliveryResult:
    """One attempt to send a queued entry; recorded in the outbox and the audit log."""
    attempt = entry.attempts + 1
    detail = {"destination": "pacs", "server": entry.server_name, "kind": entry.kind, "outbox_id": entry.id,
              "report_id": entry.report_id, "sop_instance_uid": entry.sop_instance_uid, "attempt": attempt}
    try:
        client.store([pydicom.dcmread(io.BytesIO(entry.payload))], study_uid=entry.study_uid)
    except PacsError as exc:
        updated = outbox.record_attempt(entry.id, exc.user_message)
        db.audit(entry.study_uid, user, AuditAction.EXPORTED,
                 {**detail, "outcome": "failed", "error": exc.user_message})
        log.warning("PACS '%s': report %d not sent (attempt %d): %s", entry.server_name, entry.report_id,
                    attempt, exc.user_message)
        return DeliveryResult(updated, exc)
    updated = outbox.record_attempt(entry.id)
    db.audit(entry.study_uid, user, AuditAction.EXPORTED, {**detail, "outcome": "sent"})
    log.info("PACS '%s': report %d stored (attempt %d)", entry.server_name, entry.report_id, attempt)
    return DeliveryResult(updated)


def send_signed_report(db: Database, client: PacsClient, study_uid: str, user: str = "",
                       outbox: Outbox | None = None, organisation: str = "") -> DeliveryResult:
    """Queue the signed report's SR (its newest version) for `client`'s server and try to send it.

    Never loses it: if the PACS cannot take it, it stays queued (DeliveryResult.sent False).
    Earlier versions of the same report still waiting for this server are sent first, so the
    PACS never holds an addendum without the report it amends. A version already sent is not
    sent again (the result says it was stored)."""
    own = outbox is None
    outbox = outbox or Outbox(db)
    try:
        entry = queue_signed_report(db, study_uid, client.server.name, organisation, outbox)
        if entry.status == "sent":
            return DeliveryResult(entry)
        result = DeliveryResult(entry)
        for waiting in outbox.pending(client.server.name):
            if waiting.study_uid != study_uid or waiting.id > entry.id:
                continue
            result = deliver(db, outbox, waiting, client, user)
            if not result.sent:  # server down: the later version stays queued behind it
                return DeliveryResult(outbox.get(entry.id), result.error)
        return result
    finally:
        if own:
            outbox.close()


def queue_signed_report(db: Database, study_uid: str, server_name: str, organisation: str = "",
                        outbox: Outbox | None = None) -> OutboxEntry:
    """Put the newest signed version of the study's report in the outbox for `server_name`
    (idempotent: a version already queued or sent is returned as it is). No network."""
    sr, report_id = signed_report_sr(db, study_uid, organisation)
    own = outbox is None
    outbox = outbox or Outbox(db)
    try:
        return outbox.enqueue(study_uid, report_id, server_name, str(sr.SOPInstanceUID), sr_bytes(sr))
    finally:
        if own:
            outbox.close()


def retry_outbox(db: Database, client_for: Callable[[str], PacsClient], user: str = "",
                 outbox: Outbox | None = None) -> list[DeliveryResult]:
    """Try every queued report again (oldest first). `client_for(server_name)` gives a client
    or raises PacsError (e.g. the server was removed or its password is unknown)."""
    own = outbox is None
    outbox = outbox or Outbox(db)
    results = []
    try:
        clients: dict[str, PacsClient | PacsError] = {}
        for entry in outbox.pending():
            if entry.server_name not in clients:
                try:
                    clients[entry.server_name] = client_for(entry.server_name)
                except PacsError as exc:
                    clients[entry.server_name] = exc
            client = clients[entry.server_name]
            if isinstance(client, PacsError):
                results.append(DeliveryResult(entry, client))  # no attempt was made: nothing to audit
                continue
            results.append(deliver(db, outbox, entry, client, user))
    finally:
        if own:
            outbox.close()
    return results
