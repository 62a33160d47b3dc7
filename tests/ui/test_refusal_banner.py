"""The input check in the workstation: a refusal shows why in a banner with "Draft anyway",
which re-drafts, is audited and keeps what the radiologist typed; laterals get no regions."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtTest import QTest

from rrg_desk.app.settings import AppSettings
from rrg_desk.imaging import load_studies
from rrg_desk.paths import samples_dir
from rrg_desk.store import Database
from rrg_desk.ui.draft_worker import DraftWorker
from rrg_desk.ui.main_window import MainWindow
from rrg_desk.ui.settings import open_settings
from tests.fixtures_dicom import write_dicom
from tests.ui.conftest import open_and_wait


@pytest.fixture(scope="module")
def chest_pixels() -> np.ndarray:
    return pydicom.dcmread(samples_dir() / "study1" / "01_pa.dcm").pixel_array


@pytest.fixture
def workstation(qtbot, tmp_path, tiny_bundle):
    settings = AppSettings(bundle_dir=str(tiny_bundle), device="cpu", auto_draft=False, user_name="Dr Test",
                           beam_size=1)
    main = MainWindow(settings=open_settings(), app_settings=settings,
                      database=Database.open(tmp_path / "worklist.sqlite3"))
    qtbot.addWidget(main)
    main.show()
    qtbot.waitExposed(main)
    yield main
    main.close()


def _dicom_in_folder(folder, pixels, **kwargs):
    folder.mkdir(parents=True, exist_ok=True)
    return write_dicom(folder / f"{folder.name}.dcm", pixels, bits_stored=12, **kwargs)


def _type(editor, section: str, text: str) -> None:
    edit = editor.edits[section]
    edit.setFocus()
    edit.moveCursor(QTextCursor.MoveOperation.End)
    QTest.keyClicks(edit, text)


def test_refusal_banner_and_draft_anyway(workstation, qtbot, tmp_path, chest_pixels):
    main = workstation
    folder = tmp_path / "mr"
    _dicom_in_folder(folder, chest_pixels, modality="MR")
    open_and_wait(qtbot, main, [folder])
    session = main.session
    uid = session.record.study_uid
    _type(main.editor, "findings", "Typed before drafting.")
    with qtbot.waitSignal(main.reporting.draftRefused, timeout=60_000) as blocker:
        main.commands["draft"].trigger()
    assert "an MR image" in blocker.args[0]
    banner = main.refusal_banner
    assert banner.isVisible() and "an MR image" in banner.reason.text() and banner.draft_anyway_button.isVisible()
    assert main.last_error_box is None  # a refusal is a banner, not an error dialog
    assert session.draft is None and "Typed before drafting." in main.editor.section_text("findings")

    with qtbot.waitSignal(main.reporting.draftApplied, timeout=60_000):
        qtbot.mouseClick(banner.draft_anyway_button, Qt.MouseButton.LeftButton)
    assert not banner.isVisible()
    assert session.draft.settings["draft_anyway"] is True
    assert main.editor.section_text("findings").startswith("Typed before drafting.")
    log = [(entry.action, entry.detail) for entry in session.db.audit_log(uid)]
    actions = [action for action, _ in log]
    assert actions.index("input_refused") < actions.index("draft_anyway") < actions.index("drafted")
    assert dict(log)["draft_anyway"]["reason"] == blocker.args[0]
    assert dict(log)["drafted"]["draft_anyway"] is True


def test_opening_another_study_hides_the_banner(workstation, qtbot, tmp_path, chest_pixels):
    main = workstation
    _dicom_in_folder(tmp_path / "ct", chest_pixels, modality="CT")
    open_and_wait(qtbot, main, [tmp_path / "ct"])
    with qtbot.waitSignal(main.reporting.draftRefused, timeout=60_000):
        main.commands["draft"].trigger()
    assert main.refusal_banner.isVisible()
    open_and_wait(qtbot, main, [samples_dir() / "study2"])
    assert not main.refusal_banner.isVisible() and main.session.refusal is None


def test_a_lateral_only_study_gets_no_region_boxes(workstation, qtbot, tmp_path, chest_pixels):
    main = workstation
    _dicom_in_folder(tmp_path / "lat", chest_pixels, view="LL")
    open_and_wait(qtbot, main, [tmp_path / "lat"])
    with qtbot.waitSignal(main.reporting.draftApplied, timeout=60_000) as blocker:
        main.commands["draft"].trigger()
    draft = blocker.args[0]
    assert draft.regions == [] and len(draft.findings) == 14
    assert main.reporting.overlay is None or main.reporting.overlay.region_names() == []
    assert "No frontal view" in main.statusBar().currentMessage()


def test_the_worker_reports_a_refusal_not_a_failure(qtbot, tiny_bundle, tmp_path, chest_pixels):
    studies, _ = load_studies([write_dicom(tmp_path / "us.dcm", chest_pixels, bits_stored=12, modality="US")])
    worker = DraftWorker()
    worker.configure(tiny_bundle, "cpu")
    failed = []
    worker.failed.connect(lambda *args: failed.append(args))
    try:
        with qtbot.waitSignal(worker.refused, timeout=60_000) as blocker:
            request_id = worker.request_draft(studies[0])
        assert blocker.args == [request_id, blocker.args[1]] and "ultrasound" in blocker.args[1]
        assert not failed and not worker.is_busy()
    finally:
        worker.shutdown()
