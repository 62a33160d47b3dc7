"""Retrieve a study from a PACS into the local worklist.

    retrieve_into_store(client, db, study_uid, user="", progress=None, cancel=None) -> StudyRecord

Images go to user_data_dir()/pacs/<study uid>/ and are imported only once all of them have
arrived, so the worklist never shows a study with missing images; an interrupted retrieve
keeps its complete files and the next call fetches only the rest.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

from rrg_desk.pacs.client import PacsClient
from rrg_desk.pacs.errors import PacsError, PacsServerError
from rrg_desk.paths import user_data_dir
from rrg_desk.store import Database, StoreError, StudyRecord

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^0-9A-Za-z._-]")


def pacs_folder(study_uid: str) -> Path:
    """Where a retrieved study's files live (a UID is already a safe name; guard anyway)."""
    return user_data_dir() / "pacs" / (_UNSAFE.sub("_", study_uid) or "unknown")


def retrieve_into_store(client: PacsClient, db: Database, study_uid: str, user: str = "",
                        progress: Callable[[int, int], None] | None = None,
                        cancel: Callable[[], bool] | None = None) -> StudyRecord:
    folder = pacs_folder(study_uid)
    result = client.retrieve_study(study_uid, folder, progress=progress, cancel=cancel)
    try:
        records, errors = db.import_studies(result.files, user=user)
    except StoreError as exc:
        raise PacsError(f"The study arrived from the PACS but could not be added to the worklist: "
                        f"{exc.user_message}") from exc
    record = next((r for r in records if r.study_uid == study_uid), None)
    if record is None:
        detail = errors[0].user_message if errors else "the files hold another study"
        raise PacsServerError(f"The images received from PACS '{client.server.name}' could not be read: {detail}")
    for error in errors:
        log.warning("a retrieved file could not be read: %s", error.user_message)
    return record
