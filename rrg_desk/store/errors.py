"""Store failures, mapped from sqlite3/OS errors to messages a radiologist can act on."""
from __future__ import annotations

import contextlib
import errno
import logging
import sqlite3
from collections.abc import Iterator

from rrg_desk.errors import UserFacingError

log = logging.getLogger(__name__)


class StoreError(UserFacingError):
    """The database could not do what was asked; `user_message` is for the UI.

    The UI shows the message and keeps the report text on screen: nothing typed is lost."""


class ReportSignedError(StoreError):
    """The study's report is signed: it cannot change; only addenda can be added."""

    def __init__(self, study_uid: str) -> None:
        super().__init__("This report is signed and can no longer be edited. Add an addendum instead.")
        self.study_uid = study_uid


class StudyNotFoundError(StoreError):
    def __init__(self, study_uid: str) -> None:
        super().__init__("This study is not in the worklist (it may have been removed).")
        self.study_uid = study_uid


def describe_sqlite_error(exc: sqlite3.Error, where: str = "") -> str:
    text = str(exc).lower()
    place = f" ({where})" if where else ""
    if "disk is full" in text or "database or disk is full" in text:
        return f"The disk is full: the report could not be saved{place}. Free some disk space; your text is kept on screen."
    if "readonly" in text or "read-only" in text:
        return f"The data folder is read-only: the report could not be saved{place}. Check the folder's permissions; your text is kept on screen."
    if "locked" in text or "busy" in text:
        return f"The database is busy (another RRG Desk may be using it){place}. Try again in a moment; your text is kept on screen."
    if "unable to open" in text:
        return f"The database could not be opened{place}: check that the data folder exists and is writable."
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return f"The database file is damaged{place}. Restore it from a backup or move it away to start afresh."
    if "immutable" in text or "append-only" in text:
        return "Signed reports and the audit log cannot be changed."
    return f"The database reported an error{place}: {exc}"


def describe_os_error(exc: OSError, where: str = "") -> str:
    place = f" {where}" if where else ""
    if exc.errno == errno.ENOSPC:
        return f"The disk is full{place}. Free some disk space."
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"The data folder{place} is read-only or not yours: check its permissions."
    return f"The data folder{place} cannot be used ({exc.strerror or exc})."


@contextlib.contextmanager
def mapped_errors(where: str = "") -> Iterator[None]:
    """Turn sqlite3/OS errors into StoreError (StoreError itself passes through)."""
    try:
        yield
    except StoreError:
        raise
    except sqlite3.IntegrityError as exc:
        log.warning("store integrity error%s: %s", f" in {where}" if where else "", exc)
        raise StoreError(describe_sqlite_error(exc, where)) from exc
    except sqlite3.Error as exc:
        log.warning("store error%s: %s", f" in {where}" if where else "", exc)
        raise StoreError(describe_sqlite_error(exc, where)) from exc
    except OSError as exc:
        log.warning("store OS error%s: %s", f" in {where}" if where else "", exc)
        raise StoreError(describe_os_error(exc, where)) from exc
