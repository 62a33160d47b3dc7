"""The PACS panel against the real Orthanc: search, retrieve selected (worker), errors shown."""
from __future__ import annotations

import pydicom
import pytest

pytest.importorskip("PySide6")

from rrg_desk.pacs import CredentialStore, save_servers  # noqa: E402
from rrg_desk.paths import samples_dir  # noqa: E402
from rrg_desk.store import Database  # noqa: E402
from rrg_desk.ui.pacs_panel import PacsPanel  # noqa: E402
from tests.pacs.conftest import ORTHANC_PASSWORD  # noqa: E402
from tests.pacs.helpers import server_for  # noqa: E402


@pytest.fixture
def db(tmp_path):
    database = Database.open(tmp_path / "desk.sqlite3")
    yield database
    database.close()


def test_search_and_retrieve_selected_into_the_worklist(qtbot, orthanc, db):
    server = server_for(orthanc)
    save_servers([server])
    credentials = CredentialStore(use_keychain=False)
    credentials.remember(server, ORTHANC_PASSWORD)
    panel = PacsPanel(db, credentials=credentials)
    qtbot.addWidget(panel)
    assert panel.server.currentText() == server.name

    header = pydicom.dcmread(next((samples_dir() / "study2").glob("*.dcm")), stop_before_pixels=True)
    panel.patient_id.setText(str(header.PatientID))
    with qtbot.waitSignal(panel.searchFinished, timeout=15_000) as found:
        panel.search_button.click()
    assert found.args == [1] and panel.table.rowCount() == 1
    assert panel.table.item(0, 1).text() == header.PatientID

    panel.table.selectRow(0)
    with qtbot.waitSignal(panel.studyRetrieved, timeout=30_000) as retrieved:
        panel.retrieve_button.click()
    assert retrieved.args == [header.StudyInstanceUID]
    assert [s.study_uid for s in db.list_studies()] == [header.StudyInstanceUID]
    assert panel.retrieve_button.isEnabled()  # busy state cleared


def test_a_wrong_password_is_shown_not_raised(qtbot, orthanc, db):
    server = server_for(orthanc)
    save_servers([server])
    credentials = CredentialStore(use_keychain=False)
    credentials.remember(server, "wrong")
    panel = PacsPanel(db, credentials=credentials)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.errorShown, timeout=15_000) as shown:
        panel.search_button.click()
    assert "password" in shown.args[0] and panel.status.text() == shown.args[0]
    assert panel.table.rowCount() == 0
