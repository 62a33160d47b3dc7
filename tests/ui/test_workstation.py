"""The reporting workstation end to end: open, draft, edit, review flags, sign, export, addendum;
linking of text, regions and heatmaps; autosave; worklist search and navigation."""
from __future__ import annotations

import json
import re

import pydicom
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLabel

from rrg_desk.app.settings import AppSettings
from rrg_desk.paths import samples_dir
from rrg_desk.store import Database, ReportSignedError
from rrg_desk.ui.main_window import MainWindow
from rrg_desk.ui.settings import open_settings
from tests.ui.conftest import open_and_wait, show_widget
from tests.ui.workstation_fixtures import make_draft

ASSERTING = {"Pneumothorax": "There is a pneumothorax.", "Pleural Effusion": "There is a pleural effusion.",
             "Edema": "There is pulmonary edema.", "Consolidation": "There is focal consolidation.",
             "Fracture": "There is a rib fracture.", "Atelectasis": "There is atelectasis.",
             "Lung Lesion": "There is a pulmonary nodule.", "Cardiomegaly": "The heart is enlarged."}
EVERY_FORMAT = ["txt", "pdf", "json", "fhir", "sr", "png"]


@pytest.fixture
def workstation(qtbot, tmp_path, tiny_bundle):
    settings = AppSettings(bundle_dir=str(tiny_bundle), device="cpu", auto_draft=False, user_name="Dr Test",
                           beam_size=1)
    database = Database.open(tmp_path / "worklist.sqlite3")
    main = show_widget(qtbot, MainWindow(settings=open_settings(), app_settings=settings, database=database),
                       (1400, 900))
    yield main
    main.close()


def type_at_end(qtbot, editor, section: str, text: str) -> None:
    edit = editor.edits[section]
    edit.setFocus()
    edit.moveCursor(QTextCursor.MoveOperation.End)
    QTest.keyClicks(edit, text)


def pdf_page_count(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", data))


def test_open_draft_edit_review_sign_export_addendum(workstation, qtbot, tmp_path):
    main = workstation
    open_and_wait(qtbot, main, [samples_dir() / "study1"])
    session = main.session
    assert session.record is not None and session.record.patient_name == "SAMPLE^ONE"
    with qtbot.waitSignal(main.reporting.draftApplied, timeout=60_000):
        main.commands["draft"].trigger()
    draft = session.draft
    assert len(draft.findings) == 14 and main.findings.bars.findings() == draft.findings
    assert main.editor.document is session.document and session.document.unreviewed_model_sentences()
    assert main.reporting.overlay.region_names() == [r.name for r in draft.regions if r.name != "whole_image"]

    # the radiologist asserts a finding the classifier scores below threshold -> flag (a)
    low = min((f for f in draft.findings if f.name in ASSERTING and not f.positive), key=lambda f: f.probability)
    type_at_end(qtbot, main.editor, "findings", " " + ASSERTING[low.name])
    assert session.document.findings[-1].origin == "radiologist"
    dialog = main.signoff.start_sign()
    assert dialog is not None and dialog.isVisible()
    kinds = {(flag.kind, flag.finding) for flag in dialog.flags}
    assert ("asserted_below_threshold", low.name) in kinds
    assert any(kind == "unreviewed_model_text" for kind, _ in kinds)
    assert not dialog.sign_button.isEnabled()  # every flag must be ticked first
    dialog.set_all_checked(True)
    with qtbot.waitSignal(main.signoff.signed, timeout=10_000):
        qtbot.mouseClick(dialog.sign_button, Qt.MouseButton.LeftButton)
    audit = [entry.action for entry in session.db.audit_log(session.record.study_uid)]
    assert "signed" in audit and "opened" in audit
    assert session.record.status == "signed"

    # signed: read-only on screen and in the core
    assert main.editor.is_read_only() and "Signed by Dr Test" in main.editor.banner.text()
    signed_at = session.signed_history().original.signed_at  # ISO, UTC, as stored
    assert f"Signed by Dr Test on {signed_at[:19].replace('T', ' ')} UTC — read-only." in main.editor.banner.text()
    before = main.editor.section_text("findings")
    QTest.keyClicks(main.editor.edits["findings"], "changed")
    assert main.editor.section_text("findings") == before
    with pytest.raises(ReportSignedError):
        session.edit("findings", "anything")

    # export every format through the dialog, anonymised, and read each back
    out = tmp_path / "exports"
    out.mkdir()
    export = main.signoff.start_export()
    export.set_formats(EVERY_FORMAT)
    export.folder.setText(str(out))
    export.anonymise.setChecked(True)
    with qtbot.waitSignal(main.signoff.exported, timeout=30_000) as blocker:
        qtbot.mouseClick(export.export_button, Qt.MouseButton.LeftButton)
    written = blocker.args[0]
    assert sorted(written) == sorted(EVERY_FORMAT)
    text = written["txt"].read_text()
    assert ASSERTING[low.name] in text and "SAMPLE" not in text.split("FINDINGS")[0].replace("(SAMPLE", "")
    report = json.loads(written["json"].read_text())
    assert report["status"] == "final" and report["patient"]["name"] == "ANONYMOUS"
    fhir = json.loads(written["fhir"].read_text())
    assert fhir["resourceType"] == "DiagnosticReport" and fhir["status"] == "final"
    assert fhir["conclusion"] == session.document.impression_text() and fhir["presentedForm"]
    sr = pydicom.dcmread(written["sr"])
    assert sr.Modality == "SR" and sr.PatientIdentityRemoved == "YES"
    assert sr.StudyInstanceUID != session.record.study_uid  # anonymised: a consistent new UID
    assert str(sr.PatientName) != "SAMPLE^ONE"
    pdf = written["pdf"].read_bytes()
    assert pdf.startswith(b"%PDF") and pdf_page_count(pdf) >= 1
    png = Image.open(written["png"])
    assert png.size == (session.study.frontal.width, session.study.frontal.height)
    assert "exported" in [entry.action for entry in session.db.audit_log(session.record.study_uid)]

    # an addendum has its own sign-off
    addendum = main.signoff.start_addendum()
    assert f"Report signed by Dr Test on {signed_at[:10]}." in addendum.findChild(QLabel).text()
    addendum.text.setPlainText("Comparison with outside films: unchanged.")
    with qtbot.waitSignal(main.signoff.addendumSigned, timeout=10_000):
        qtbot.mouseClick(addendum.sign_button, Qt.MouseButton.LeftButton)
    kinds = [r.kind for r in session.signed_history().versions]
    assert kinds.count("addendum") == 1 and "Addendum 1" in main.editor.banner.text()


def open_with_hand_draft(main, qtbot):
    open_and_wait(qtbot, main, [samples_dir() / "study2"])
    frontal = main.session.study.frontal or main.session.study.images[0]
    assert main.session.apply_draft(make_draft(main.session.study.study_uid, frontal.width, frontal.height))
    main.reporting.show_report()
    return main.session.document


def test_sentence_region_and_heatmap_are_linked(workstation, qtbot):
    main = workstation
    document = open_with_hand_draft(main, qtbot)
    overlay = main.reporting.overlay
    heart = document.findings[0]
    main.editor.scroll_to_sentence(heart.id)
    assert overlay.highlighted() == "heart" and overlay.heatmap_shown() and overlay.legend.isVisible()
    assert "sentence" in main.overlay_panel.heatmap_label.text()
    # clicking a region scrolls to its sentence
    view = overlay.view
    box = overlay.item("right_lung").rect()
    point = view.mapFromScene(view.image_item.mapToScene(QPointF(box.left() + 4, box.top() + 4)))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert main.editor.edits["findings"].textCursor().selectedText() == "The right lung is clear."
    assert overlay.highlighted() == "right_lung"
    # a finding's heatmap replaces the sentence's
    main.findings.select("Cardiomegaly")
    assert "finding Cardiomegaly" in main.overlay_panel.heatmap_label.text() and overlay.heatmap_shown()
    # the region without a sentence shows only when all are asked for (View menu or panel)
    assert not overlay.is_region_shown("left_lung")
    main.commands["toggle_all_regions"].trigger()
    assert overlay.is_region_shown("left_lung") and main.overlay_panel.show_all_regions.isChecked()
    main.overlay_panel.show_all_regions.setChecked(False)
    assert not overlay.is_region_shown("left_lung") and not main.commands["toggle_all_regions"].isChecked()
    # region boxes toggle from the View menu
    main.commands["toggle_regions"].trigger()
    assert not overlay.is_region_shown("right_lung")


def test_autosave_writes_the_draft_within_two_seconds(workstation, qtbot):
    main = workstation
    open_with_hand_draft(main, qtbot)
    with qtbot.waitSignal(main.reporting.autosaved, timeout=5_000):
        type_at_end(qtbot, main.editor, "impression", " Small effusion.")
    saved = main.session.db.load_draft(main.session.record.study_uid)
    assert saved is not None and saved.impression_text().endswith("Small effusion.")


def test_describe_region_inserts_a_model_sentence(workstation, qtbot):
    main = workstation
    open_with_hand_draft(main, qtbot)
    before = len(main.session.document.findings)
    main.session.settings.beam_size = 1
    with qtbot.waitSignal(main.worker.regionDescribed, timeout=60_000):
        main.reporting.describe_box((10.0, 10.0, 150.0, 200.0))
    findings = main.session.document.findings
    if len(findings) > before:  # a random tiny model may write nothing; then the status says so
        assert findings[-1].origin == "model" and findings[-1].unreviewed
        assert main.editor.section_text("findings").endswith(findings[-1].text)
    else:
        assert "nothing to say" in main.statusBar().currentMessage()


def refreshed_worklist(qtbot, main):
    """Refresh the worklist and wait for its rows (the query runs on the worklist's thread)."""
    with qtbot.waitSignal(main.worklist.refreshed, timeout=5_000):
        main.worklist.refresh()


def test_worklist_search_sort_and_next_study(workstation, qtbot):
    main = workstation
    main.database.import_studies([samples_dir()])
    refreshed_worklist(qtbot, main)
    assert len(main.worklist.visible_uids()) == 4
    assert main.worklist.count_label.text() == "4 studies"
    main.worklist.search.setText("THREE")
    qtbot.waitUntil(lambda: len(main.worklist.visible_uids()) == 1, timeout=3_000)
    main.worklist.search.setText("SAMPLE0002")  # accession
    qtbot.waitUntil(lambda: main.worklist.model.records() and
                    main.worklist.model.records()[0].patient_name == "SAMPLE^TWO", timeout=3_000)
    main.worklist.search.clear()
    qtbot.waitUntil(lambda: len(main.worklist.visible_uids()) == 4, timeout=3_000)
    with qtbot.waitSignal(main.worklist.refreshed, timeout=5_000):  # the store sorts
        main.worklist.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    names = [main.worklist.model.index(r, 0).data() for r in range(4)]
    assert names == sorted(names)
    first = main.worklist.uid_at(0)
    with qtbot.waitSignal(main.studyShown, timeout=10_000):
        main.worklist.studyActivated.emit(first)
    assert main.session.record.study_uid == first
    with qtbot.waitSignal(main.studyShown, timeout=10_000):
        main.commands["next_study"].trigger()
    assert main.session.record.study_uid != first


def test_settings_dialog_refuses_a_folder_that_is_not_a_bundle(workstation, qtbot, tmp_path, tiny_bundle):
    dialog = workstation.open_settings_dialog()
    dialog.bundle_dir.setText(str(tmp_path))
    dialog.accept()
    assert dialog.isVisible() and "card.json" in dialog.error.text()
    dialog.bundle_dir.setText(str(tiny_bundle))
    dialog.beam_size.setValue(2)
    dialog.accept()
    assert not dialog.isVisible() and workstation.app_settings.beam_size == 2
    assert AppSettings.load().beam_size == 2  # the readable settings file
    assert open_settings().value("workstation/beam_size") in (2, "2")  # mirrored to QSettings
