"""What the printed report (PDF) says, Qt-free: the page furniture repeated on every page and
the body sections, as plain strings. rrg_desk/ui/pdf_export.py only lays them out and paints.

Dates print as people read them ("5 Jan 2024"; times with their zone), never raw ISO or
DICOM DA. Anonymised exports go through `ReportMeta.for_export` first, like every format.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rrg_desk.imaging.dicom_values import display_name, parse_date
from rrg_desk.reports.document import CLINICAL_SECTIONS, ReportDocument
from rrg_desk.reports.export.common import DRAFT_BANNER, SOFTWARE_NAME, ReportMeta

REPORT_TITLE = "Chest radiograph report"
NOT_STATED = "Not stated."
SECTION_TITLES = {"indication": "Indication", "technique": "Technique", "comparison": "Comparison",
                  "findings": "Findings", "impression": "Impression"}


def human_date(dicom_date: str) -> str:
    """'20240105' -> '5 Jan 2024'; '' -> ''; anything unparseable is returned unchanged."""
    text = (dicom_date or "").strip()
    day = parse_date(text)
    return f"{day.day} {day:%b %Y}" if day is not None else text


def human_datetime(moment: datetime | None) -> str:
    """A timestamp in the workstation's local time with its zone: '5 Jan 2024, 14:03 CET'."""
    if moment is None:
        return ""
    local = moment.astimezone() if moment.tzinfo is not None else moment
    zone = local.strftime("%Z")
    return f"{local.day} {local:%b %Y}, {local:%H:%M}" + (f" {zone}" if zone else "")


@dataclass(frozen=True)
class PrintHeader:
    """The institution printed at the top of every page (settings: institution name, address)."""

    institution: str = ""
    address: str = ""


@dataclass(frozen=True)
class PrintablePage:
    """Furniture of every page, already worded."""

    institution: str
    address: str
    title: str
    patient_line: str  # name, ID, date of birth (anonymised when the export is)
    study_line: str  # examination, date, accession
    status_line: str  # "Signed by ... on ..." or the draft banner

    def footer(self, page: int, pages: int) -> str:
        return f"Page {page} of {pages}"


@dataclass(frozen=True)
class PrintableSection:
    title: str
    text: str


@dataclass(frozen=True)
class PrintableReport:
    page: PrintablePage
    sections: tuple[PrintableSection, ...]
    signature: str
    addenda: tuple[PrintableSection, ...]
    draft: bool


def printable_report(document: ReportDocument, meta: ReportMeta, header: PrintHeader | None = None) -> PrintableReport:
    """The report as printed; `meta` already anonymised by the caller when it should be."""
    header = header or PrintHeader()
    patient = meta.patient
    patient_line = "   ".join([
        f"Patient: {display_name(patient.name) or '-'}",
        f"ID: {patient.patient_id or '-'}",
        f"Date of birth: {human_date(patient.birth_date) or '-'}",
    ] + ([f"Sex: {patient.sex}"] if patient.sex else []))
    study_line = "   ".join([f"Examination: {meta.description or 'Chest radiograph'}",
                             f"Study date: {human_date(meta.study_date) or '-'}"]
                            + ([f"Accession: {meta.accession_number}"] if meta.accession_number else []))
    if meta.signed:
        status = f"Signed by {meta.signer} on {human_datetime(meta.signed_at)}"
        signature = f"Electronically signed by {meta.signer} on {human_datetime(meta.signed_at)}."
    else:
        status = DRAFT_BANNER
        signature = f"{DRAFT_BANNER}. Drafted with the help of {SOFTWARE_NAME}; not valid as a report until signed."
    sections = [PrintableSection(SECTION_TITLES[name], document.clinical.get(name, "").strip() or NOT_STATED)
                for name in CLINICAL_SECTIONS]
    sections += [PrintableSection("Findings", document.findings_text().strip() or "-"),
                 PrintableSection("Impression", document.impression_text().strip() or "-")]
    addenda = tuple(PrintableSection(f"Addendum {number} — signed by {a.signer} on {human_datetime(a.signed_at)}",
                                     a.text) for number, a in enumerate(meta.addenda, start=1))
    page = PrintablePage(institution=header.institution.strip(), address=header.address.strip(), title=REPORT_TITLE,
                         patient_line=patient_line, study_line=study_line, status_line=status)
    return PrintableReport(page=page, sections=tuple(sections), signature=signature, addenda=addenda,
                           draft=not meta.signed)
