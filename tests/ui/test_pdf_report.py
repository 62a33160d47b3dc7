"""The printed report: header, patient line and "Page n of m" on every page, the clinical
sections editable in the workstation and printed, the key image on its own page."""
from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime, timezone

from rrg_desk.app.settings import AppSettings
from rrg_desk.imaging.types import PatientInfo
from rrg_desk.paths import samples_dir
from rrg_desk.reports.document import ReportDocument
from rrg_desk.reports.export.common import ReportMeta
from rrg_desk.reports.export.printable import PrintHeader
from rrg_desk.store import Database
from rrg_desk.ui import pdf_export
from rrg_desk.ui.main_window import MainWindow
from rrg_desk.ui.settings import open_settings
from tests.ui.conftest import open_and_wait
from tests.ui.workstation_fixtures import make_draft

META = ReportMeta(study_uid="1.2.3", patient=PatientInfo("DOE^JANE", "PID-7", "19600105", "F"),
                  study_date="20240105", description="XR CHEST PA", signer="Dr Ada",
                  signed_at=datetime(2024, 1, 6, 10, 0, tzinfo=timezone.utc))


def pdf_pages(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", data))


def pdf_text_pages(path) -> list[str] | None:
    """Each page's text with poppler's pdftotext when installed (None otherwise)."""
    if shutil.which("pdftotext") is None:
        return None
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return [page for page in text.split("\f") if page.strip()]


def _document(sentences: int) -> ReportDocument:
    document = ReportDocument(study_uid="1.2.3")
    document.replace_section_text("findings", " ".join(f"Finding sentence number {i} is stated here."
                                                       for i in range(sentences)))
    document.replace_section_text("impression", "Normal chest.")
    document.set_clinical_text("indication", "Cough for a week.")
    return document


def test_every_page_carries_header_patient_and_page_n_of_m(qtbot, tmp_path, monkeypatch):
    painted = []
    original = pdf_export._PagePainter.furniture
    monkeypatch.setattr(pdf_export._PagePainter, "furniture",
                        lambda self, n, m: (painted.append((n, m, self.report.page.patient_line)),
                                            original(self, n, m)))
    out = pdf_export.export_pdf(_document(400), META, tmp_path / "long.pdf", header=PrintHeader("St Elsewhere"))
    pages = pdf_pages(out.read_bytes())
    assert pages >= 3 and [(n, m) for n, m, _ in painted] == [(n, pages) for n in range(1, pages + 1)]
    assert all("DOE, JANE" in line and "PID-7" in line and "5 Jan 1960" in line for _, _, line in painted)
    texts = pdf_text_pages(out)
    if texts is not None:  # what a reader of the PDF really sees
        assert len(texts) == pages
        for number, page in enumerate(texts, start=1):
            assert "St Elsewhere" in page and "DOE, JANE" in page and "PID-7" in page and "5 Jan 1960" in page
            assert f"Page {number} of {pages}" in page
        assert "INDICATION" in texts[0] and "Cough for a week." in texts[0] and "20240105" not in "".join(texts)


def test_key_image_gets_its_own_page_and_a_short_report_fits_on_one(qtbot, tmp_path):
    from PySide6.QtGui import QColor, QImage

    image = QImage(400, 500, QImage.Format.Format_RGB32)
    image.fill(QColor("grey"))
    short = pdf_export.export_pdf(_document(3), META, tmp_path / "short.pdf")
    assert pdf_pages(short.read_bytes()) == 1
    with_image = pdf_export.export_pdf(_document(3), META, tmp_path / "image.pdf", key_image=image)
    assert pdf_pages(with_image.read_bytes()) == 2
    texts = pdf_text_pages(with_image)
    if texts is not None:
        assert "KEY IMAGE" in texts[1] and "Page 2 of 2" in texts[1] and "DOE, JANE" in texts[1]


def test_clinical_details_are_edited_in_the_workstation_and_printed(qtbot, tmp_path):
    settings = AppSettings(bundle_dir="", auto_draft=False, user_name="Dr Test", identity_confirmed=True,
                           institution_name="St Elsewhere General", autosave_seconds=0.2)
    main = MainWindow(settings=open_settings(), app_settings=settings, database=Database.open(tmp_path / "w.sqlite3"))
    qtbot.addWidget(main)
    main.show()
    open_and_wait(qtbot, main, [samples_dir() / "study2"])
    fields = main.clinical_fields
    assert fields.value("technique").startswith("Chest radiograph") and not fields.edits["indication"].isReadOnly()
    qtbot.keyClicks(fields.edits["indication"], "Fever, rule out pneumonia")
    assert main.session.document.clinical["indication"] == "Fever, rule out pneumonia"
    with qtbot.waitSignal(main.reporting.autosaved, timeout=5_000):
        pass
    uid = main.session.study_uid
    assert main.database.load_draft(uid).clinical["indication"] == "Fever, rule out pneumonia"
    frontal = main.session.study.frontal or main.session.study.images[0]
    main.session.apply_draft(make_draft(uid, frontal.width, frontal.height))  # the draft keeps what was typed
    main.reporting.show_report()
    assert fields.value("indication") == "Fever, rule out pneumonia"
    main.editor.accept_all()
    main.signoff.finish_sign(main.session.user, main.session.check_before_sign())
    assert fields.edits["indication"].isReadOnly()  # signed: read-only, like the text
    written = main.signoff.export(["pdf"], tmp_path, anonymise=False, key_image=True)
    assert pdf_pages(written["pdf"].read_bytes()) == 2
    texts = pdf_text_pages(written["pdf"])
    if texts is not None:
        assert "St Elsewhere General" in texts[0] and "Fever, rule out pneumonia" in texts[0]
        assert "Signed by Dr Test" in texts[0]
    main.close()


def test_anonymised_pdf_furniture_names_nobody(qtbot, tmp_path, monkeypatch):
    painted = []
    original = pdf_export._PagePainter.furniture
    monkeypatch.setattr(pdf_export._PagePainter, "furniture",
                        lambda self, n, m: (painted.append(self.report.page.patient_line), original(self, n, m)))
    pdf_export.export_pdf(_document(3), META, tmp_path / "anon.pdf", anonymise=True)
    assert painted and all("DOE" not in line and "PID-7" not in line and "1960" not in line for line in painted)


def test_anonymised_pdf_text_is_de_identified(qtbot, tmp_path):
    document = _document(2)
    document.set_clinical_text("indication", "Follow-up for DOE JANE, ID PID-7.")
    out = pdf_export.export_pdf(document, META, tmp_path / "anon-text.pdf", anonymise=True)
    texts = pdf_text_pages(out)
    if texts is not None:
        text = "".join(texts)
        assert "PID-7" not in text and "DOE" not in text and "Dr Ada" not in text and "1960" not in text
