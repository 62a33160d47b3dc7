"""Sign -> PACS in the workstation (pytest-qt) against a real Orthanc: signing stores the SR,
an addendum stores a second SR referencing the first, the worklist shows the delivery status,
an outage queues and a retry sends, the export dialog's "Send to PACS" reuses the UID, and the
auto-send setting turns it off."""
from __future__ import annotations

import pydicom
import pytest

pytest.importorskip("PySide6")

from dicomweb_client import DICOMwebClient  # noqa: E402
from dicomweb_client.session_utils import create_session_from_user_pass  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from rrg_desk.app.settings import AppSettings  # noqa: E402
from rrg_desk.pacs import Outbox, PacsServer, save_servers  # noqa: E402
from rrg_desk.paths import samples_dir  # noqa: E402
from rrg_desk.store import Database  # noqa: E402
from rrg_desk.ui.main_window import MainWindow  # noqa: E402
from rrg_desk.ui.settings import open_settings  # noqa: E402
from tests.pacs.conftest import ORTHANC_PASSWORD  # noqa: E402
from tests.pacs.helpers import server_for, sr_texts  # noqa: E402
from tests.reports.synthetic import make_draft  # noqa: E402

STUDY1 = sorted((samples_dir() / "study1").glob("*.dcm"))
TIMEOUT_MS = 30_000


def _workstation(qtbot, tmp_path, server: PacsServer, **settings) -> MainWindow:
    save_servers([server])
    app_settings = AppSettings(bundle_dir="", auto_draft=False, user_name="Jane Radiologist",
                               identity_confirmed=True, institution_name="St Elsewhere Hospital", **settings)
    main = MainWindow(settings=open_settings(), app_settings=app_settings,
                      database=Database.open(tmp_path / "worklist.sqlite3"))
    qtbot.addWidget(main)
    main.pacs_panel.credentials.remember(server, ORTHANC_PASSWORD, persist=False)
    main.show()
    qtbot.waitExposed(main)
    return main


def _open_with_draft(qtbot, main: MainWindow) -> str:
    with qtbot.waitSignal(main.loadHandled, timeout=10_000):
        main.open_paths([samples_dir() / "study1"])
    uid = main.session.study.study_uid
    assert main.session.apply_draft(make_draft(uid))
    main.reporting.show_report()
    main.session.accept_all()
    return uid


def _sign(qtbot, main: MainWindow) -> None:
    dialog = main.signoff.start_sign()
    if dialog is not None:  # truthfulness flags to tick first
        dialog.set_all_checked(True)
        qtbot.mouseClick(dialog.sign_button, Qt.MouseButton.LeftButton)


def _srs_on(pacs, study_uid: str) -> dict[str, pydicom.Dataset]:
    reader = DICOMwebClient(pacs.dicomweb_url, session=create_session_from_user_pass(*pacs.auth))
    found = {}
    for entry in reader.search_for_instances(study_instance_uid=study_uid, search_filters={"Modality": "SR"}):
        ds = pydicom.Dataset.from_json(entry)
        found[ds.SOPInstanceUID] = reader.retrieve_instance(study_uid, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    return found


def _pacs_column(qtbot, main: MainWindow, study_uid: str) -> str:
    """The worklist's PACS column once its refresh (run on the worklist's thread) answered."""
    qtbot.waitUntil(lambda: not main.worklist.refreshing, timeout=TIMEOUT_MS)
    return main.worklist.model.pacs_label(study_uid)


@pytest.fixture
def pacs(disposable_orthanc):
    for path in STUDY1:
        disposable_orthanc.upload(path)
    return disposable_orthanc


def test_signing_and_an_addendum_store_srs_on_the_pacs(qtbot, tmp_path, pacs):
    main = _workstation(qtbot, tmp_path, server_for(pacs))
    uid = _open_with_draft(qtbot, main)
    with qtbot.waitSignal(main.pacs_delivery.delivered, timeout=TIMEOUT_MS) as first:
        _sign(qtbot, main)
    assert first.args[0].sent, first.args[0].message
    (report_uid, report), = _srs_on(pacs, uid).items()
    assert report_uid == first.args[0].entry.sop_instance_uid
    assert sr_texts(report)["Finding"] == main.session.document.findings_text()
    assert str(report.VerifyingObserverSequence[0].VerifyingObserverName) == "Radiologist^Jane"
    assert report.VerifyingObserverSequence[0].VerifyingOrganization == "St Elsewhere Hospital"
    signed_at = main.session.signed_history().original.signed_at  # ISO, UTC
    assert report.VerifyingObserverSequence[0].VerificationDateTime.startswith(
        signed_at[:19].replace("-", "").replace("T", "").replace(":", ""))
    assert _pacs_column(qtbot, main, uid) == "Sent"

    # the addendum: a new SR instance that references the first (Predecessor Documents)
    addendum = main.signoff.start_addendum()
    addendum.text.setPlainText("Comparison with outside films: unchanged.")
    with qtbot.waitSignal(main.pacs_delivery.delivered, timeout=TIMEOUT_MS) as second:
        qtbot.mouseClick(addendum.sign_button, Qt.MouseButton.LeftButton)
    assert second.args[0].sent, second.args[0].message
    on_pacs = _srs_on(pacs, uid)
    assert set(on_pacs) == {report_uid, second.args[0].entry.sop_instance_uid}
    amended = on_pacs[second.args[0].entry.sop_instance_uid]
    predecessor = amended.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert predecessor.ReferencedSOPInstanceUID == report_uid
    assert sr_texts(amended)["Comment"] == "Comparison with outside films: unchanged."

    # "Send to PACS" in the export dialog, alone: the same version keeps its UID (nothing new)
    dialog = main.signoff.start_export()
    assert dialog.send_to_pacs.isEnabled() and pacs_name_in(dialog.send_to_pacs.text())
    dialog.set_formats([])
    dialog.send_to_pacs.setChecked(True)
    assert dialog.export_button.isEnabled()
    with qtbot.waitSignal(main.pacs_delivery.delivered, timeout=TIMEOUT_MS) as again:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert again.args[0].sent and again.args[0].entry.sop_instance_uid == amended.SOPInstanceUID
    assert set(_srs_on(pacs, uid)) == set(on_pacs)
    sends = [e.detail for e in main.session.db.audit_log(uid, action="exported") if e.detail.get("destination") == "pacs"]
    versions = main.session.signed_history().versions
    assert [(d["outcome"], d["report_id"]) for d in sends] == [("sent", r.id) for r in versions]
    main.close()


def pacs_name_in(text: str) -> bool:
    return "test-pacs" in text


def test_an_outage_shows_failed_with_the_reason_and_a_retry_sends(qtbot, tmp_path, pacs):
    main = _workstation(qtbot, tmp_path, server_for(pacs, timeout_s=5))
    uid = _open_with_draft(qtbot, main)
    pacs.stop(crash=True)
    with qtbot.waitSignal(main.pacs_delivery.delivered, timeout=TIMEOUT_MS) as failed:
        _sign(qtbot, main)
    assert not failed.args[0].sent
    label = _pacs_column(qtbot, main, uid)
    assert label.startswith("Failed: ") and "cannot be reached" in label
    assert main.pacs_delivery.retry_timer.isActive()  # retried later by itself
    assert "queued" in main.statusBar().currentMessage()
    pacs.start()
    with qtbot.waitSignal(main.pacs_delivery.statusChanged, timeout=TIMEOUT_MS):
        main.pacs_delivery.retry_pending()  # what the timer does when it fires
    assert _pacs_column(qtbot, main, uid) == "Sent" and len(_srs_on(pacs, uid)) == 1
    assert not main.pacs_delivery.retry_timer.isActive()
    main.close()


def test_auto_send_off_queues_nothing_until_asked(qtbot, tmp_path):
    server = PacsServer("nowhere", "http://127.0.0.1:9/dicom-web", timeout_s=1)  # never contacted
    main = _workstation(qtbot, tmp_path, server, pacs_auto_send=False)
    uid = _open_with_draft(qtbot, main)
    with qtbot.waitSignal(main.signoff.signed, timeout=TIMEOUT_MS):
        _sign(qtbot, main)
    qtbot.wait(50)
    with Outbox(main.session.db) as outbox:
        assert outbox.entries() == []
    assert _pacs_column(qtbot, main, uid) == ""
    dialog = main.signoff.start_export()
    assert dialog.send_to_pacs.isEnabled()  # on request it still goes
    dialog.reject()
    main.close()


def test_closing_at_once_leaves_no_outbox_check_on_the_closed_database(qtbot, tmp_path):
    server = PacsServer("nowhere", "http://127.0.0.1:9/dicom-web", timeout_s=1)  # never contacted
    main = _workstation(qtbot, tmp_path, server)
    refreshed = []
    main.pacs_delivery.statusChanged.connect(lambda: refreshed.append(True))
    main.close()  # before the start-up outbox check has run
    qtbot.wait(50)  # the queued check fires now, after the database closed
    assert main.pacs_delivery.closed and refreshed == []
    assert not main.pacs_delivery.retry_timer.isActive()
