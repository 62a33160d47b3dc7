"""PDF export of a report: A4 pages painted by QPdfWriter, the words from the Qt-free
rrg_desk.reports.export.printable.

Every page carries the institution header (settings), the patient's name, ID and date of birth,
the study line, the signature status and "Page n of m"; the body (indication, technique,
comparison, findings, impression, signature, addenda, key image) is a QTextDocument laid out
in the space between and cut into pages. The key image is the core's annotated PNG (regions,
R/L marker, readable labels: rrg_desk/reports/export/image.py). Failures become ExportError.
"""
from __future__ import annotations

import html
import os
from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF, QSizeF, Qt, QUrl
from PySide6.QtGui import (QColor, QFont, QFontMetricsF, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen,
                           QTextDocument)

from rrg_desk.fileio import replacing
from rrg_desk.reports.deid import prepare
from rrg_desk.reports.export.common import ExportError, ReportMeta
from rrg_desk.reports.export.printable import PrintableReport, PrintHeader, printable_report
from rrg_desk.reports.export.registry import ExportJob

DPI = 300
MARGINS_MM = QMarginsF(16, 14, 16, 14)
KEY_IMAGE_MAX_MM = (150.0, 190.0)  # width, height on paper
_KEY_IMAGE_URL = "rrg://key-image.png"
_HTML_DPI = 96
_DRAFT_RED = "#b00000"


def _mm(mm: float) -> float:
    return mm / 25.4 * DPI


def report_html(report: PrintableReport, image_size_px: tuple[int, int] | None = None) -> str:
    """The body of the printed report (`image_size_px` in CSS pixels, 96 per inch)."""
    parts = ["<html><body style='font-size: 10pt;'>"]
    if report.draft:
        parts.append(f"<p style='color: {_DRAFT_RED}; font-weight: bold; font-size: 12pt;'>"
                     f"{html.escape(report.page.status_line)}</p>")
    for section in report.sections:
        parts.append(f"<p style='margin-top: 8pt; margin-bottom: 2pt; font-weight: bold; font-size: 10pt;'>"
                     f"{html.escape(section.title.upper())}</p>"
                     f"<p style='margin-top: 0;'>{html.escape(section.text)}</p>")
    parts.append(f"<p style='margin-top: 12pt; font-style: italic;'>{html.escape(report.signature)}</p>")
    for addendum in report.addenda:
        parts.append(f"<p style='margin-top: 10pt; margin-bottom: 2pt; font-weight: bold;'>"
                     f"{html.escape(addendum.title.upper())}</p><p style='margin-top: 0;'>{html.escape(addendum.text)}</p>")
    if image_size_px is not None:
        width, height = image_size_px
        parts.append("<p style='page-break-before: always; margin-bottom: 2pt; font-weight: bold;'>KEY IMAGE</p>"
                     f"<p align='center'><img src='{_KEY_IMAGE_URL}' width='{width}' height='{height}'></p>"
                     "<p style='font-size: 8pt;'>Frontal view with the regions the findings describe; "
                     "R and L mark the patient's right and left.</p>")
    parts.append("</body></html>")
    return "".join(parts)


def _image_size(image: QImage, body_height: float) -> tuple[int, int]:
    """On its own page under its heading, with the caption: at most KEY_IMAGE_MAX_MM."""
    max_height = min(_mm(KEY_IMAGE_MAX_MM[1]), body_height - _mm(30))
    scale = min(_mm(KEY_IMAGE_MAX_MM[0]) / image.width(), max_height / image.height())
    scale *= _HTML_DPI / DPI  # <img width/height> are CSS pixels (96 per inch), scaled up to the device
    return max(1, int(image.width() * scale)), max(1, int(image.height() * scale))


def _font(points: float, bold: bool = False) -> QFont:
    font = QFont()
    font.setPointSizeF(points)
    font.setBold(bold)
    return font


class _PagePainter:
    """Header and footer of one page, in device pixels."""

    def __init__(self, painter: QPainter, width: float, height: float, report: PrintableReport) -> None:
        self.painter, self.width, self.height, self.report = painter, width, height, report
        self.header_height = self._header(dry_run=True)
        self.footer_height = QFontMetricsF(_font(8), painter.device()).height() * 1.8

    def _line(self, y: float, text: str, font: QFont, color: str = "#000000", align=Qt.AlignmentFlag.AlignLeft,
              dry_run: bool = False) -> float:
        metrics = QFontMetricsF(font, self.painter.device())
        if not dry_run and text:
            self.painter.setFont(font)
            self.painter.setPen(QColor(color))
            self.painter.drawText(QRectF(0, y, self.width, metrics.height()), int(align | Qt.AlignmentFlag.AlignVCenter),
                                  metrics.elidedText(text, Qt.TextElideMode.ElideRight, self.width))
        return y + metrics.height() if text else y

    def _header(self, dry_run: bool = False) -> float:
        page, y = self.report.page, 0.0
        if page.institution:
            y = self._line(y, page.institution, _font(13, bold=True), dry_run=dry_run)
        if page.address:
            y = self._line(y, page.address, _font(8), "#444444", dry_run=dry_run)
        title_y = y
        y = self._line(y, page.title, _font(11, bold=True), dry_run=dry_run)
        if self.report.draft:  # beside the title, in red, on every page
            self._line(title_y, page.status_line, _font(11, bold=True), _DRAFT_RED, Qt.AlignmentFlag.AlignRight,
                       dry_run=dry_run)
        y += _mm(1)
        y = self._line(y, page.patient_line, _font(9.5, bold=True), dry_run=dry_run)
        y = self._line(y, page.study_line, _font(9), dry_run=dry_run)
        y += _mm(1.5)
        if not dry_run:
            self.painter.setPen(QPen(QColor("#000000"), _mm(0.3)))
            self.painter.drawLine(0, int(y), int(self.width), int(y))
        return y + _mm(3)

    def furniture(self, number: int, pages: int) -> None:
        self._header()
        top = self.height - self.footer_height
        self.painter.setPen(QPen(QColor("#000000"), _mm(0.2)))
        self.painter.drawLine(0, int(top), int(self.width), int(top))
        font = _font(8)
        y = top + _mm(1)
        status = self.report.page.status_line
        self._line(y, status, font, _DRAFT_RED if self.report.draft else "#000000")
        self._line(y, self.report.page.footer(number, pages), font, align=Qt.AlignmentFlag.AlignRight)


def export_pdf(document, meta: ReportMeta, out: str | Path, anonymise: bool = False,
               key_image: QImage | None = None, header: PrintHeader | None = None) -> Path:
    """Write the report as an A4 PDF; `key_image` (the annotated frontal view) is embedded."""
    out = Path(out)
    document, meta = prepare(document, meta, anonymise)  # the one de-identification every exporter uses
    report = printable_report(document, meta, header)
    if not out.parent.is_dir():
        raise ExportError(f"The folder {out.parent} does not exist.")
    if not os.access(out.parent, os.W_OK):
        raise ExportError(f"The folder {out.parent} is read-only or not yours: choose another folder for the export.")
    try:
        with replacing(out) as tmp:
            pages = _paint(report, str(tmp), key_image)
            if pages == 0 or tmp.stat().st_size == 0:
                raise ExportError(f"{out.name} could not be written to {out.parent} (the PDF came out empty; "
                                  f"is the disk full?).")
    except OSError as exc:
        raise ExportError(f"{out.name} could not be written to {out.parent} ({exc.strerror or exc}).") from exc
    return out


def _paint(report: PrintableReport, path: str, key_image: QImage | None) -> int:
    writer = QPdfWriter(path)
    writer.setResolution(DPI)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                     MARGINS_MM, QPageLayout.Unit.Millimeter))
    writer.setTitle(report.page.title)
    writer.setCreator("RRG Desk")
    painter = QPainter()
    if not painter.begin(writer):
        raise ExportError(f"The PDF {path} could not be started (is the folder writable?).")
    try:
        width, height = float(writer.width()), float(writer.height())
        furniture = _PagePainter(painter, width, height, report)
        body_top = furniture.header_height
        body_height = height - body_top - furniture.footer_height - _mm(2)
        body = QTextDocument()
        body.documentLayout().setPaintDevice(writer)
        body.setDefaultFont(_font(10))
        with_image = key_image is not None and not key_image.isNull()
        if with_image:
            body.addResource(QTextDocument.ResourceType.ImageResource, QUrl(_KEY_IMAGE_URL), key_image)
        body.setHtml(report_html(report, _image_size(key_image, body_height) if with_image else None))
        body.setPageSize(QSizeF(width, body_height))
        pages = max(1, body.pageCount())
        for index in range(pages):
            if index:
                writer.newPage()
            furniture.furniture(index + 1, pages)
            painter.save()
            painter.translate(0, body_top - index * body_height)
            body.drawContents(painter, QRectF(0, index * body_height, width, body_height))
            painter.restore()
        return pages
    finally:
        painter.end()


def write_pdf(job: ExportJob, out: Path) -> Path:
    """The PDF exporter the UI registers with the Session (register_pdf_export)."""
    png = job.key_image_png()
    image = QImage.fromData(png) if png else None
    return export_pdf(job.document, job.meta, out, job.anonymise, key_image=image, header=job.header)


def register_pdf_export(session) -> None:
    """Make "pdf" one of the session's export formats, written and audited like the others."""
    session.register_exporter("pdf", ".pdf", write_pdf)
