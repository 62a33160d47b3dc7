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
from datetime import datetime

import pydicom
from pydicom.dataset import Dataset

from rrg_desk.pacs.client import PacsClient
from rrg_desk.pacs.errors import PacsError, PacsSettingsError
from rrg_desk.pacs.outbox import Outbox, OutboxEntry
from rrg_desk.reports.document import ReportDocument
from rrg_desk.reports.export import Addendum, ExportError, ReportMeta, dicom_sr
from rrg_desk.store import Database, StoreError

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


def signed_report_sr(db: Database, study_uid: str) -> tuple[Dataset, int]:
    """The SR of the study's signed report with its addenda; and the newest signed row id
    (an addendum makes a new SR version, queued separately)."""
    try:
        rows = db.signed_reports(study_uid)
        original = next((r for r in rows if r.kind == "report"), None)
        if original is None or original.document is None:
            raise PacsSettingsError("Only a signed report can be sent to the PACS; sign it first.")
        study = db.load_study(study_uid)
        addenda = tuple(Addendum(text=r.addendum_text, signer=r.signer, signed_at=datetime.fromisoformat(r.signed_at))
                        for r in rows if r.kind == "addendum")
        meta = ReportMeta.from_study(study, signer=original.signer,
                                     signed_at=datetime.fromisoformat(original.signed_at),
                                     report_id=str(original.id), addenda=addenda,
                                     pseudonym_salt=db.installation_secret())
        return dicom_sr(ReportDocument.from_dict(original.document), meta, study.images), rows[-1].id
    except (StoreError, ExportError) as exc:
        raise PacsError(f"The report could not be prepared for the PACS: {exc.user_message}") from exc


def _dicom_bytes(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


def deliver(db: Database, outbox: Outbox, entry: OutboxEntry, client: PacsClient, user: str = "") -> DeliveryResult:
    """One attempt to send a queued entry; recorded in the outbox and the audit log."""
    attempt = entry.attempts + 1
    detail = {"destination": "pacs", "server": entry.server_name, "kind": entry.kind, "outbox_id": entry.id,
              "report_id": entry.report_id, "sop_instance_uid": entry.sop_instance_uid, "attempt": attempt}
    try:
        client.store([pydicom.dcmread(io.BytesIO(entry.payload))], study_uid=entry.study_uid)
    except PacsError as exc:
        updated = outbox.record_attempt(entry.id, exc.user_message)
        db.audit(entry.study_uid, user, "exported", {**detail, "outcome": "failed", "error": exc.user_message})
        log.warning("PACS '%s': report %d not sent (attempt %d): %s", entry.server_name, entry.report_id,
                    attempt, exc.user_message)
        return DeliveryResult(updated, exc)
    updated = outbox.record_attempt(entry.id)
    db.audit(entry.study_uid, user, "exported", {**detail, "outcome": "sent"})
    log.info("PACS '%s': report %d stored (attempt %d)", entry.server_name, entry.report_id, attempt)
    return DeliveryResult(updated)


def send_signed_report(db: Database, client: PacsClient, study_uid: str, user: str = "",
                       outbox: Outbox | None = None) -> DeliveryResult:
    """Queue the signed report's SR for `client`'s server and try to send it now.

    Never loses it: if the PACS cannot take it, it stays queued (DeliveryResult.sent False)."""
    sr, report_id = signed_report_sr(db, study_uid)
    own = outbox is None
    outbox = outbox or Outbox(db)
    try:
        entry = outbox.enqueue(study_uid, report_id, client.server.name, str(sr.SOPInstanceUID), _dicom_bytes(sr))
        if entry.status == "sent":
            return DeliveryResult(entry)
        return deliver(db, outbox, entry, client, user)
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
