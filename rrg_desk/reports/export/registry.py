"""Export formats by name: the ones the core writes, and any a caller registers (the UI adds PDF).

An exporter only writes one file from an `ExportJob`; choosing the file name, auditing and
error handling are the caller's (rrg_desk.app.session.Session.export is the one path), so every
format, PDF included, is written and logged the same way.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rrg_desk.imaging.types import Study, XrayImage
from rrg_desk.reports.document import ReportDocument
from rrg_desk.reports.draft import Draft, RegionResult
from rrg_desk.reports.export.common import ExportError, ReportMeta
from rrg_desk.reports.export.dicom_sr import export_dicom_sr
from rrg_desk.reports.export.fhir import export_fhir
from rrg_desk.reports.export.image import annotated_png_bytes, export_annotated_png
from rrg_desk.reports.export.printable import PrintHeader
from rrg_desk.reports.export.text import export_json, export_txt


@dataclass(frozen=True)
class ExportJob:
    """Everything an exporter may need for one report; `key_image_png()` is rendered at most once."""

    document: ReportDocument
    meta: ReportMeta
    study: Study
    draft: Draft | None
    anonymise: bool
    header: PrintHeader
    key_image_png: Callable[[], bytes | None]  # the annotated frontal view, None when not asked for


class Exporter(Protocol):
    def __call__(self, job: ExportJob, out: Path) -> Path: ...


@dataclass(frozen=True)
class ExportFormat:
    suffix: str  # after the report's base name, e.g. ".sr.dcm"
    write: Exporter


def _key_image(study: Study, draft: Draft | None) -> tuple[XrayImage, list[RegionResult]] | None:
    """The frontal image and the regions the draft selected, or None without a draft."""
    if draft is None:
        return None
    return study.primary_image, [r for r in draft.regions if r.selected]


def key_image_png(study: Study, draft: Draft | None, meta: ReportMeta, anonymise: bool) -> bytes | None:
    """The annotated frontal image (selected regions) as PNG bytes, or None without a draft."""
    picture = _key_image(study, draft)
    return None if picture is None else annotated_png_bytes(*picture, meta, anonymise)


def _write_txt(job: ExportJob, out: Path) -> Path:
    return export_txt(job.document, job.meta, out, job.anonymise)


def _write_json(job: ExportJob, out: Path) -> Path:
    return export_json(job.document, job.meta, out, job.anonymise)


def _write_fhir(job: ExportJob, out: Path) -> Path:
    return export_fhir(job.document, job.meta, out, job.anonymise, key_image_png=job.key_image_png())


def _write_sr(job: ExportJob, out: Path) -> Path:
    return export_dicom_sr(job.document, job.meta, job.study.images, out, job.anonymise)


def _write_png(job: ExportJob, out: Path) -> Path:
    picture = _key_image(job.study, job.draft)
    if picture is None:
        raise ExportError("The annotated image needs a draft (regions); draft the study first.")
    return export_annotated_png(*picture, out, job.anonymise, job.meta)


class ExporterRegistry:
    """Format name -> ExportFormat, in registration order."""

    def __init__(self) -> None:
        self._formats: dict[str, ExportFormat] = {}

    @classmethod
    def with_core_formats(cls) -> "ExporterRegistry":
        registry = cls()
        registry.register("txt", ".txt", _write_txt)
        registry.register("json", ".json", _write_json)
        registry.register("fhir", ".fhir.json", _write_fhir)
        registry.register("sr", ".sr.dcm", _write_sr)
        registry.register("png", ".png", _write_png)
        return registry

    def register(self, name: str, suffix: str, write: Exporter) -> None:
        """Add (or replace) a format; a later registration of the same name wins."""
        self._formats[name] = ExportFormat(suffix, write)

    def names(self) -> list[str]:
        return list(self._formats)

    def check(self, names: list[str]) -> None:
        """ValueError naming the formats nobody registered (a programming error, not the user's)."""
        unknown = [name for name in names if name not in self._formats]
        if unknown:
            raise ValueError(f"unknown export format(s) {unknown}; registered: {self.names()} "
                             "(PDF is registered by rrg_desk.ui.pdf_export at start-up)")

    def __getitem__(self, name: str) -> ExportFormat:
        return self._formats[name]
