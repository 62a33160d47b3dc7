"""PACS integration over DICOMweb (Qt-free): search, retrieve into the worklist, send reports.

    servers = load_servers() ; save_servers(servers)          # pacs-servers.json, no passwords
    credentials = CredentialStore()                           # keychain, else this session only
    client = client_for(server, credentials)                  # or PacsClient(server, password)
    client.search_studies(StudyQuery(patient_name="doe", date_from=date(2024, 1, 1)))
    retrieve_into_store(client, db, study_uid, user, progress=cb) -> StudyRecord
    send_signed_report(db, client, study_uid, user) -> DeliveryResult (queued when it fails)
    queue_signed_report(db, study_uid, server_name) -> OutboxEntry      (no network)
    Outbox(db).statuses() -> {study_uid: DeliveryStatus}                 (sent / queued / failed)
    retry_outbox(db, client_for=lambda name: ..., user) -> list[DeliveryResult]

Failures raise PacsError subclasses with a `user_message` (errors.py).
"""
from rrg_desk.pacs.client import X_RAY_MODALITIES, PacsClient, RetrieveResult, StudyHit, StudyQuery
from rrg_desk.pacs.credentials import CredentialStore, client_for, keychain_available
from rrg_desk.pacs.errors import (
    PacsAuthError, PacsCancelledError, PacsError, PacsNotFoundError, PacsRejectedError,
    PacsRetrieveIncompleteError, PacsServerError, PacsSettingsError, PacsTimeoutError, PacsTlsError,
    PacsUnreachableError,
)
from rrg_desk.pacs.outbox import DeliveryStatus, Outbox, OutboxEntry, delivery_statuses
from rrg_desk.pacs.retrieve import pacs_folder, retrieve_into_store
from rrg_desk.pacs.send import (
    DeliveryResult, deliver, queue_signed_report, retry_outbox, send_signed_report, signed_report_sr,
)
from rrg_desk.pacs.settings import PacsServer, find_server, load_servers, report_server, save_servers, servers_path

__all__ = [
    "X_RAY_MODALITIES", "PacsClient", "RetrieveResult", "StudyHit", "StudyQuery", "CredentialStore", "client_for",
    "keychain_available", "PacsAuthError", "PacsCancelledError", "PacsError", "PacsNotFoundError",
    "PacsRejectedError", "PacsRetrieveIncompleteError", "PacsServerError", "PacsSettingsError", "PacsTimeoutError",
    "PacsTlsError", "PacsUnreachableError", "DeliveryStatus", "Outbox", "OutboxEntry", "delivery_statuses", "pacs_folder", "retrieve_into_store",
    "DeliveryResult", "deliver", "queue_signed_report", "retry_outbox", "send_signed_report", "signed_report_sr", "PacsServer",
    "find_server", "load_servers", "report_server", "save_servers", "servers_path",
]
