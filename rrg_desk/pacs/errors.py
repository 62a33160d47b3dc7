"""Typed PACS failures, each with a `user_message` a radiologist can act on.

The client maps `requests`/`dicomweb-client` exceptions to these (see client.py), so the UI
never shows a traceback; the outbox keeps a report whose send failed queued, with the message.
"""
from __future__ import annotations

from rrg_desk.errors import UserFacingError


class PacsError(UserFacingError):
    """A PACS operation failed; `user_message` says why and what to do."""


class PacsUnreachableError(PacsError):
    """No connection: server down, wrong host/port, network out."""


class PacsTimeoutError(PacsError):
    """Connected (or trying to) but no answer within the server's timeout."""


class PacsTlsError(PacsError):
    """The server's certificate could not be verified."""


class PacsAuthError(PacsError):
    """401/403: wrong user name or password, or the user lacks the permission."""

    def __init__(self, user_message: str, status: int) -> None:
        super().__init__(user_message)
        self.status = status


class PacsNotFoundError(PacsError):
    """404: the study (or the DICOMweb service path) is not on the server."""


class PacsServerError(PacsError):
    """Any other HTTP error or an answer we cannot read."""

    def __init__(self, user_message: str, status: int | None = None) -> None:
        super().__init__(user_message)
        self.status = status


class PacsRejectedError(PacsError):
    """STOW-RS answered but refused the instance (FailedSOPSequence)."""


class PacsRetrieveIncompleteError(PacsError):
    """A retrieve stopped part-way. The complete files are kept; retrieving again resumes."""

    def __init__(self, user_message: str, fetched: int, total: int, cause: PacsError | None = None) -> None:
        super().__init__(user_message)
        self.fetched = fetched
        self.total = total
        self.cause = cause


class PacsCancelledError(PacsError):
    """The user cancelled; files already complete are kept for a later resume."""


class PacsSettingsError(PacsError):
    """The server settings are unusable (bad URL, unknown server, no password)."""
