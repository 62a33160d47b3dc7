"""Exporters of a report (signed, or a draft marked "DRAFT — not signed").

    export_txt(document, meta, out, anonymise=False) -> Path
    export_json(document, meta, out, anonymise=False) -> Path
    export_fhir(document, meta, out, anonymise=False, key_image_png=None) -> Path
    export_dicom_sr(document, meta, images, out, anonymise=False) -> Path
    export_annotated_png(image, regions, out, anonymise=False, meta=None) -> Path

`ReportMeta` carries patient, study and signature; `anonymise` replaces the patient's name,
ID and birth date (pseudo-id = keyed hash) in every format. Failures raise ExportError with a
`user_message`. The formats by name are in `registry` (ExporterRegistry); PDF is rendered by
the UI (Qt's QTextDocument, rrg_desk/ui/pdf_export.py), which registers it there.
"""
from rrg_desk.reports.export.common import (
    ANONYMOUS_NAME, DRAFT_BANNER, Addendum, ExportError, ReportMeta, base_name, pseudo_id,
)
from rrg_desk.reports.export.dicom_sr import dicom_sr, export_dicom_sr
from rrg_desk.reports.export.fhir import diagnostic_report, export_fhir
from rrg_desk.reports.export.image import annotated_png_bytes, export_annotated_png, render_annotated_image
from rrg_desk.reports.export.text import export_json, export_txt, report_json, report_text

__all__ = [
    "ANONYMOUS_NAME", "DRAFT_BANNER", "Addendum", "ExportError", "ReportMeta", "base_name", "pseudo_id",
    "dicom_sr", "export_dicom_sr", "diagnostic_report", "export_fhir", "annotated_png_bytes",
    "export_annotated_png", "render_annotated_image", "export_json", "export_txt", "report_json",
    "report_text",
]
