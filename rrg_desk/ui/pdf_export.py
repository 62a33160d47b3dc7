"""PDF export of a report: QTextDocument laid out on A4 by QPrinter (PdfFormat).

The text is the core's `report_text` (so TXT and PDF say the same thing, draft banner and
anonymisation included); the annotated key image is optional. Failures become ExportError.
"""
from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QSizeF, QUrl
from PySide6.QtGui import QImage, QPageLayout, QPageSize, QTextDocument
from PySide6.QtPrintSupport import QPrinter

from rrg_desk.reports.export.common import DRAFT_BANNER, ExportError, ReportMeta
from rrg_desk.reports.export.text import report_text

KEY_IMAGE_MAX_WIDTH_PT = 380
_KEY_IMAGE_URL = "rrg://key-image.png"


def report_html(document, meta: ReportMeta, with_image: bool = False) -> str:
    body = html.escape(report_text(document, meta))
    parts = ["<html><body style='font-family: sans-serif; font-size: 10pt;'>",
             "<h2>Chest radiograph report</h2>"]
    if not meta.signed:
        parts.append(f"<p style='color: #b00000; font-weight: bold;'>{html.escape(DRAFT_BANNER)}</p>")
    parts.append(f"<pre style='white-space: pre-wrap; font-family: sans-serif;'>{body}</pre>")
    if with_image:
        parts.append(f"<p><img src='{_KEY_IMAGE_URL}' width='{KEY_IMAGE_MAX_WIDTH_PT}'></p>"
                     "<p style='font-size: 8pt;'>Key image with the regions the model described.</p>")
    parts.append("</body></html>")
    return "".join(parts)


def export_pdf(document, meta: ReportMeta, out: str | Path, anonymise: bool = False,
               key_image: QImage | None = None) -> Path:
    """Write the report as a PDF; `key_image` (e.g. the annotated frontal view) is embedded."""
    out = Path(out)
    meta = meta.for_export(anonymise)
    text_document = QTextDocument()
    with_image = key_image is not None and not key_image.isNull()
    if with_image:
        text_document.addResource(QTextDocument.ResourceType.ImageResource, QUrl(_KEY_IMAGE_URL), key_image)
    text_document.setHtml(report_html(document, meta, with_image))
    if not out.parent.is_dir():
        raise ExportError(f"The folder {out.parent} does not exist.")
    if not os.access(out.parent, os.W_OK):
        raise ExportError(f"The folder {out.parent} is read-only or not yours: choose another folder for the export.")
    handle, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}-", suffix=".part")
    os.close(handle)
    try:
        printer = QPrinter(QPrinter.PrinterMode.HighResolution)
        printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
        printer.setOutputFileName(tmp)
        printer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                          QMarginsF(18, 18, 18, 18), QPageLayout.Unit.Millimeter))
        printer.setDocName("Chest radiograph report")
        text_document.setPageSize(QSizeF(printer.pageRect(QPrinter.Unit.Point).size()))
        text_document.print_(printer)
        if Path(tmp).stat().st_size == 0:
            raise ExportError(f"{out.name} could not be written to {out.parent} (the PDF came out empty; "
                              f"is the disk full?).")
        os.replace(tmp, out)
        tmp = None
    except OSError as exc:
        raise ExportError(f"{out.name} could not be written to {out.parent} ({exc.strerror or exc}).") from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return out


def pdf_renderer(settings=None) -> tuple[str, object]:
    """(suffix, render) for Session.export: render(document, meta, out, anonymise, key_png)."""

    def render(document, meta: ReportMeta, out: Path, anonymise: bool, key_image_png: bytes | None) -> Path:
        image = QImage.fromData(key_image_png) if key_image_png else None
        return export_pdf(document, meta, out, anonymise, key_image=image)

    return ".pdf", render


def qimage_png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(data)
