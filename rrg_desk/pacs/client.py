"""DICOMweb client of one PACS server, on dicomweb-client: QIDO search, WADO retrieve, STOW.

    client = PacsClient(server, password)
    client.search_studies(StudyQuery(patient_name="doe", modalities=("CR", "DX"))) -> list[StudyHit]
    client.retrieve_study(study_uid, folder, progress=cb(done, total), cancel=callable) -> RetrieveResult
    client.store(datasets) -> list[str]  (stored SOP Instance UIDs)

Every transport/HTTP failure becomes a typed PacsError (errors.py). A retrieve writes each
instance to a ".part" file beside "<sop uid>.dcm" and renames it when complete, so an
interrupted retrieve leaves only whole files, and the next retrieve fetches just the missing ones.
"""
from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pydicom
import requests
from dicomweb_client import DICOMwebClient
from pydicom.dataset import Dataset

from rrg_desk.fileio import replacing
from rrg_desk.pacs.errors import (
    PacsAuthError, PacsCancelledError, PacsError, PacsNotFoundError, PacsRejectedError,
    PacsRetrieveIncompleteError, PacsServerError, PacsTimeoutError, PacsTlsError, PacsUnreachableError,
)
from rrg_desk.pacs.settings import PacsServer

log = logging.getLogger(__name__)

X_RAY_MODALITIES = ("CR", "DX")
_STUDY_FIELDS = ["StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedInstances", "PatientBirthDate"]
_NAME_SEPARATORS = re.compile(r"[\s^,]+")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


@dataclass(frozen=True)
class StudyQuery:
    """QIDO-RS study filters; empty fields do not filter. Dates are inclusive."""

    patient_name: str = ""
    patient_id: str = ""
    accession: str = ""
    date_from: date | None = None
    date_to: date | None = None
    modalities: tuple[str, ...] = X_RAY_MODALITIES  # () = any modality
    limit: int = 200


@dataclass(frozen=True)
class StudyHit:
    study_uid: str
    patient_name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    study_date: str = ""
    accession: str = ""
    description: str = ""
    modalities: tuple[str, ...] = ()
    instance_count: int | None = None


@dataclass
class RetrieveResult:
    study_uid: str
    folder: Path
    files: list[Path] = field(default_factory=list)
    fetched: int = 0  # downloaded by this call
    reused: int = 0  # already complete from an earlier, interrupted retrieve


def name_pattern(text: str) -> str:
    """'doe jane' / 'DOE^JANE' / 'Doe, J' -> 'doe*jane*' (prefix match on each name part).

    Why not 'DOE^JANE': '^' is percent-encoded in the URL and some servers (Orthanc 1.10's
    DICOMweb plugin) compare the still-encoded text; '*' matches the separator anyway."""
    words = [w for w in _NAME_SEPARATORS.split(text.strip()) if w]
    return "*".join(words) + "*" if words else ""


def date_range(date_from: date | None, date_to: date | None) -> str:
    start = date_from.strftime("%Y%m%d") if date_from else ""
    end = date_to.strftime("%Y%m%d") if date_to else ""
    if start and start == end:
        return start
    return f"{start}-{end}" if (start or end) else ""


class _WildcardSafeSession(requests.Session):
    """Sends QIDO wildcards '*' and '?' literally instead of percent-encoded.

    Both are legal in a URL query (RFC 3986 sub-delims / query chars); servers that decode
    the query see the same value, and Orthanc 1.10, which does not decode, matches at all."""

    def prepare_request(self, request):
        prepared = super().prepare_request(request)
        if prepared.url and "?" in prepared.url:
            base, query = prepared.url.split("?", 1)
            prepared.url = base + "?" + query.replace("%2A", "*").replace("%3F", "?")
        return prepared


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    if isinstance(value, pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value) if value is not None else ""


def _hit_from_json(entry: dict) -> StudyHit:
    ds = Dataset.from_json(entry)
    modalities = ds.get("ModalitiesInStudy", [])
    if isinstance(modalities, str):
        modalities = [modalities]
    count = ds.get("NumberOfStudyRelatedInstances")
    return StudyHit(study_uid=_text(ds, "StudyInstanceUID"), patient_name=_text(ds, "PatientName"),
                    patient_id=_text(ds, "PatientID"), birth_date=_text(ds, "PatientBirthDate"),
                    study_date=_text(ds, "StudyDate"), accession=_text(ds, "AccessionNumber"),
                    description=_text(ds, "StudyDescription"), modalities=tuple(str(m) for m in modalities),
                    instance_count=int(count) if count not in (None, "") else None)


class PacsClient:
    def __init__(self, server: PacsServer, password: str | None = None) -> None:
        self.server = server
        session = _WildcardSafeSession()
        session.verify = server.verify_tls
        if server.username:
            session.auth = (server.username, password or "")
        self._web = DICOMwebClient(server.url.rstrip("/"), session=session, timeout=server.timeout_s)
        # a desk user waits: two quick retries on 429/503, not the library's five with back-off
        self._web.set_http_retry_params(retry=True, max_attempts=2, wait_exponential_multiplier=250)

    # --- error mapping ------------------------------------------------------------------
    @contextlib.contextmanager
    def _mapped(self, what: str, study_uid: str = ""):
        name = self.server.name
        try:
            yield
        except PacsError:
            raise
        except requests.exceptions.SSLError as exc:
            raise PacsTlsError(f"The certificate of PACS '{name}' could not be verified ({what}). Ask your "
                               "administrator, or turn TLS verification off only for a trusted test server.") from exc
        except requests.exceptions.Timeout as exc:
            raise PacsTimeoutError(f"PACS '{name}' did not answer within {self.server.timeout_s:g} s ({what}). "
                                   "Try again later or raise the timeout in the PACS settings.") from exc
        except requests.exceptions.ConnectionError as exc:
            raise PacsUnreachableError(f"PACS '{name}' cannot be reached at {self.server.url} ({what}). Check the "
                                       "address and the network; nothing was lost.") from exc
        except requests.exceptions.HTTPError as exc:
            raise self._http_error(exc, what, study_uid) from exc
        except requests.exceptions.RequestException as exc:
            raise PacsUnreachableError(f"The connection to PACS '{name}' broke off ({what}): "
                                       f"{type(exc).__name__}. Try again.") from exc
        except (ValueError, KeyError, TypeError, pydicom.errors.InvalidDicomError) as exc:
            raise PacsServerError(f"PACS '{name}' sent an answer RRG Desk cannot read ({what}): {exc}") from exc

    def _http_error(self, exc: requests.exceptions.HTTPError, what: str, study_uid: str) -> PacsError:
        status = exc.response.status_code if exc.response is not None else None
        name = self.server.name
        if status == 401:
            return PacsAuthError(f"PACS '{name}' refused the user name or password. Check them in the PACS "
                                 "settings.", status)
        if status == 403:
            return PacsAuthError(f"User '{self.server.username}' is not allowed to do this on PACS '{name}' "
                                 f"({what}).", status)
        if status == 404:
            subject = f"Study {study_uid}" if study_uid else "The requested item"
            return PacsNotFoundError(f"{subject} was not found on PACS '{name}' (404). If every request fails "
                                     "like this, check the DICOMweb address (it often ends in /dicom-web).")
        return PacsServerError(f"PACS '{name}' answered with an error ({status}) while {what}.", status)

    # --- QIDO-RS ------------------------------------------------------------------------
    def search_studies(self, query: StudyQuery) -> list[StudyHit]:
        """Studies matching every given filter; one request per modality (multi-value
        ModalitiesInStudy matching is optional in the standard), merged, newest first."""
        filters: dict[str, str] = {}
        if query.patient_name.strip():
            filters["PatientName"] = name_pattern(query.patient_name)
        if query.patient_id.strip():
            filters["PatientID"] = query.patient_id.strip()
        if query.accession.strip():
            filters["AccessionNumber"] = query.accession.strip()
        dates = date_range(query.date_from, query.date_to)
        if dates:
            filters["StudyDate"] = dates
        hits: dict[str, StudyHit] = {}
        for modality in query.modalities or (None,):
            one = dict(filters, **({"ModalitiesInStudy": modality} if modality else {}))
            with self._mapped("searching for studies"):
                entries = self._web.search_for_studies(search_filters=one, fields=_STUDY_FIELDS,
                                                       limit=query.limit)
                for entry in entries:
                    hit = _hit_from_json(entry)
                    if hit.study_uid:
                        hits.setdefault(hit.study_uid, hit)
        log.info("PACS '%s': %d studies match %s", self.server.name, len(hits), sorted(filters))
        return sorted(hits.values(), key=lambda h: (h.study_date, h.study_uid), reverse=True)[:query.limit]

    def study_instances(self, study_uid: str) -> list[tuple[str, str]]:
        """(series uid, SOP instance uid) of every instance; PacsNotFoundError when none."""
        if not _UID.match(study_uid):
            raise PacsNotFoundError(f"{study_uid!r} is not a DICOM Study Instance UID.")
        with self._mapped("listing the study's images", study_uid):
            entries = self._web.search_for_instances(study_instance_uid=study_uid,
                                                     fields=["SeriesInstanceUID", "SOPInstanceUID"])
            pairs = [(Dataset.from_json(e).SeriesInstanceUID, Dataset.from_json(e).SOPInstanceUID) for e in entries]
        if not pairs:
            raise PacsNotFoundError(f"Study {study_uid} was not found on PACS '{self.server.name}' "
                                    "(it has no images there).")
        return pairs

    # --- WADO-RS ------------------------------------------------------------------------
    def retrieve_study(self, study_uid: str, folder: Path, progress: Callable[[int, int], None] | None = None,
                       cancel: Callable[[], bool] | None = None) -> RetrieveResult:
        """Fetch every instance of the study into `folder` (resuming an interrupted retrieve)."""
        instances = self.study_instances(study_uid)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.part"):
            stale.unlink(missing_ok=True)  # left by a crash during a previous retrieve
        result = RetrieveResult(study_uid=study_uid, folder=folder)
        total = len(instances)
        for index, (series_uid, sop_uid) in enumerate(instances):
            target = folder / f"{sop_uid}.dcm"
            if target.exists():
                result.reused += 1
            else:
                if cancel is not None and cancel():
                    raise PacsCancelledError(f"Retrieve cancelled after {len(result.files)} of {total} images; "
                                             "retrieving again continues where it stopped.")
                try:
                    with self._mapped("retrieving an image", study_uid):
                        dataset = self._web.retrieve_instance(study_uid, series_uid, sop_uid)
                    _write_whole(dataset, target)
                except PacsError as exc:
                    raise PacsRetrieveIncompleteError(
                        f"Only {len(result.files)} of {total} images of the study arrived: {exc.user_message} "
                        "The images already received are kept; retrieve again to fetch the rest.",
                        fetched=len(result.files), total=total, cause=exc) from exc
                result.fetched += 1
            result.files.append(target)
            if progress is not None:
                progress(index + 1, total)
        log.info("PACS '%s': study retrieved into %s (%d fetched, %d already here)",
                 self.server.name, folder, result.fetched, result.reused)
        return result

    # --- STOW-RS ------------------------------------------------------------------------
    def store(self, datasets: list[Dataset], study_uid: str = "") -> list[str]:
        """Store instances; the SOP Instance UIDs the server accepted. PacsRejectedError if any failed."""
        with self._mapped("storing the report", study_uid):
            response = self._web.store_instances(datasets, study_instance_uid=study_uid or None)
        failed = list(response.get("FailedSOPSequence", []) if response is not None else [])
        if failed:
            reasons = ", ".join(f"{item.get('ReferencedSOPInstanceUID', '?')}: reason {item.get('FailureReason', '?')}"
                                for item in failed)
            raise PacsRejectedError(f"PACS '{self.server.name}' refused to store the report ({reasons}).")
        accepted = [str(item.get("ReferencedSOPInstanceUID", ""))
                    for item in (response.get("ReferencedSOPSequence", []) if response is not None else [])]
        return accepted or [str(ds.SOPInstanceUID) for ds in datasets]


def _write_whole(dataset: Dataset, target: Path) -> None:
    """`target` exists only when complete (a retrieve resumed later trusts the files it finds)."""
    try:
        with replacing(target) as part:
            pydicom.dcmwrite(part, dataset, enforce_file_format=True)
    except OSError as exc:
        raise PacsError(f"The image could not be saved to {target.parent} ({exc.strerror or exc}).") from exc
