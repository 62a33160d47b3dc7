"""FHIR R4 DiagnosticReport JSON, built and validated with fhir.resources (R4B models,
whose DiagnosticReport is the R4 one)."""
from __future__ import annotations

import base64
import json
from pathlib import Path

from rrg_desk.imaging.dicom_values import display_name, parse_date
from rrg_desk.reports.deid import prepare
from rrg_desk.reports.document import ReportDocument
from rrg_desk.reports.export.common import SOFTWARE_NAME, ExportError, ReportMeta, utc_now, write_atomic
from rrg_desk.reports.export.text import report_text

LOINC = "http://loinc.org"
DIAGNOSTIC_IMAGING_REPORT = ("18748-4", "Diagnostic imaging study")
DICOM_UID_SYSTEM = "urn:dicom:uid"
PATIENT_ID_SYSTEM = "urn:rrg-desk:patient-id"
_GENDERS = {"M": "male", "F": "female", "O": "other"}


def _fhir_date(dicom_date: str) -> str | None:
    day = parse_date(dicom_date)
    return day.isoformat() if day is not None else None


def diagnostic_report(document: ReportDocument, meta: ReportMeta, key_image_png: bytes | None = None) -> dict:
    """The DiagnosticReport as a JSON-ready dict, validated by fhir.resources."""
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport  # heavy import: only when exporting

    text = report_text(document, meta)
    patient: dict = {"resourceType": "Patient", "id": "patient",
                     "identifier": [{"system": PATIENT_ID_SYSTEM, "value": meta.patient.patient_id or "unknown"}],
                     "name": [{"text": display_name(meta.patient.name) or "unknown"}]}
    birth = _fhir_date(meta.patient.birth_date)
    if birth:
        patient["birthDate"] = birth
    if meta.patient.sex.upper() in _GENDERS:
        patient["gender"] = _GENDERS[meta.patient.sex.upper()]
    issued = meta.signed_at or utc_now()
    resource: dict = {
        "resourceType": "DiagnosticReport",
        "status": ("appended" if meta.addenda else "final") if meta.signed else "preliminary",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                                  "code": "RAD", "display": "Radiology"}]}],
        "code": {"coding": [{"system": LOINC, "code": DIAGNOSTIC_IMAGING_REPORT[0],
                             "display": DIAGNOSTIC_IMAGING_REPORT[1]}],
                 "text": meta.description or "Chest radiograph"},
        "contained": [patient],
        "subject": {"reference": "#patient", "display": display_name(meta.patient.name) or "unknown"},
        "issued": issued.isoformat(),
        "conclusion": document.impression_text(),
        "presentedForm": [{"contentType": "text/plain; charset=utf-8", "language": "en",
                           "title": "Radiology report" if meta.signed else "Radiology report (DRAFT, not signed)",
                           "data": base64.b64encode(text.encode("utf-8")).decode("ascii")}],
        "imagingStudy": [{"identifier": {"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{meta.study_uid}"},
                          "display": meta.description or "Chest radiograph"}],
        "extension": [{"url": "urn:rrg-desk:drafted-with", "valueString": SOFTWARE_NAME}],
    }
    effective = _fhir_date(meta.study_date)
    if effective:
        resource["effectiveDateTime"] = effective
    if meta.report_id:
        resource["identifier"] = [{"system": "urn:rrg-desk:report-id", "value": meta.report_id}]
    if meta.accession_number:
        resource["basedOn"] = [{"identifier": {"system": "urn:rrg-desk:accession", "value": meta.accession_number},
                                "display": "Accession " + meta.accession_number}]
    if meta.signed:
        interpreter = [{"display": meta.signer}]
        resource["resultsInterpreter"] = interpreter
        resource["performer"] = interpreter
    if key_image_png is not None:
        resource["presentedForm"].append({"contentType": "image/png", "title": "Annotated key image",
                                          "data": base64.b64encode(key_image_png).decode("ascii")})
    try:
        validated = DiagnosticReport.model_validate(resource)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ExportError(f"The FHIR report could not be built: {exc}") from exc
    return json.loads(validated.model_dump_json(exclude_none=True))


def export_fhir(document: ReportDocument, meta: ReportMeta, out: str | Path, anonymise: bool = False,
                key_image_png: bytes | None = None) -> Path:
    document, meta = prepare(document, meta, anonymise)
    payload = diagnostic_report(document, meta, key_image_png)
    return write_atomic(Path(out), json.dumps(payload, indent=2, ensure_ascii=False).encode("utf-8"))
