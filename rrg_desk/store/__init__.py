"""The SQLite store: worklist, autosaved drafts, immutable signed reports, audit log.

    Database.open(path=None) -> Database          (user_data_dir()/rrg-desk.sqlite3 by default)
    StoreError(user_message), ReportSignedError, StudyNotFoundError
    WorklistQuery / WorklistPage / WorklistReader: the paging worklist (store/worklist.py)
    rrg_desk.store.export.export_store(db_path, out, ...): signed reports -> a training dataset
"""
from rrg_desk.store.database import DATABASE_FILE_NAME, Database
from rrg_desk.store.errors import ReportSignedError, StoreError, StudyNotFoundError
from rrg_desk.store.records import SIGNED_STATUSES, AuditAction, AuditEntry, SignedReport, StudyRecord, StudyStatus
from rrg_desk.store.schema import SCHEMA_VERSION
from rrg_desk.store.worklist import WorklistPage, WorklistQuery, WorklistReader

__all__ = ["DATABASE_FILE_NAME", "Database", "ReportSignedError", "StoreError", "StudyNotFoundError",
           "AuditAction", "AuditEntry", "SignedReport", "StudyRecord", "SCHEMA_VERSION", "SIGNED_STATUSES",
           "StudyStatus",
           "WorklistPage", "WorklistQuery", "WorklistReader"]
