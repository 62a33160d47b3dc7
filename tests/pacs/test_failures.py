"""Failure cases against a real Orthanc: 401, 404, outage (outbox + retry), interrupted
retrieve (resumed), timeout. Each error is typed and carries a message for the user."""
from __future__ import annotations

import socket
import time

import pydicom
import pytest

from rrg_desk.pacs import (
    Outbox, PacsAuthError, PacsClient, PacsNotFoundError, PacsRetrieveIncompleteError, PacsServer,
    PacsSettingsError, PacsTimeoutError, PacsUnreachableError, StudyQuery, pacs_folder, retrieve_into_store,
    retry_outbox, send_signed_report,
)
from rrg_desk.paths import samples_dir
from rrg_desk.store import Database
from tests.pacs.conftest import ORTHANC_PASSWORD, free_port
from tests.pacs.helpers import SIGNER, server_for, sign_report

STUDY1 = sorted((samples_dir() / "study1").glob("*.dcm"))


def _study1_on(pacs, tmp_path, timeout_s: float = 10.0) -> tuple[PacsClient, Database, str]:
    """Study 1 uploaded to `pacs`: a client of that server, an empty store and the study's uid."""
    for path in STUDY1:
        pacs.upload(path)
    client = PacsClient(server_for(pacs, timeout_s=timeout_s), ORTHANC_PASSWORD)
    study_uid = pydicom.dcmread(STUDY1[0], stop_before_pixels=True).StudyInstanceUID
    return client, Database.open(tmp_path / "desk.sqlite3"), study_uid


def test_wrong_password_is_an_auth_error(orthanc):
    client = PacsClient(server_for(orthanc), "not-the-password")
    with pytest.raises(PacsAuthError) as caught:
        client.search_studies(StudyQuery())
    assert caught.value.status == 401
    assert "password" in caught.value.user_message and "not-the-password" not in caught.value.user_message


def test_unknown_study_is_not_found_and_leaves_the_worklist_alone(orthanc, tmp_path):
    client = PacsClient(server_for(orthanc), ORTHANC_PASSWORD)
    unknown = "1.2.826.0.1.3680043.8.498.99999999999999999999999999999999999"
    db = Database.open(tmp_path / "desk.sqlite3")
    with pytest.raises(PacsNotFoundError) as caught:
        retrieve_into_store(client, db, unknown)
    assert unknown in caught.value.user_message
    assert db.list_studies() == []
    db.close()


def test_wrong_dicomweb_path_is_a_404(orthanc):
    server = PacsServer(name="typo", url=orthanc.url + "/dicomweb-typo", username=orthanc.auth[0])
    with pytest.raises(PacsNotFoundError) as caught:
        PacsClient(server, ORTHANC_PASSWORD).search_studies(StudyQuery())
    assert "/dicom-web" in caught.value.user_message


def test_outage_queues_the_report_and_retry_sends_it(disposable_orthanc, tmp_path):
    pacs = disposable_orthanc
    client, db, study_uid = _study1_on(pacs, tmp_path, timeout_s=5)
    retrieve_into_store(client, db, study_uid, user=SIGNER)
    report = sign_report(db, study_uid)

    pacs.stop(crash=True)  # the PACS goes down between sign-off and sending
    failed = send_signed_report(db, client, study_uid, user=SIGNER)
    assert not failed.sent and isinstance(failed.error, PacsUnreachableError)
    assert "queued" in failed.message
    with Outbox(db) as outbox:
        assert [e.report_id for e in outbox.pending()] == [report.id]
    # still queued after the program restarts (a new connection sees the row)
    db.close()
    db = Database.open(tmp_path / "desk.sqlite3")
    with Outbox(db) as outbox:
        assert len(outbox.pending()) == 1

    # retrying while the server is still down: one more failed attempt, still queued
    assert [r.sent for r in retry_outbox(db, lambda name: client, user=SIGNER)] == [False]

    pacs.start()
    results = retry_outbox(db, lambda name: client, user=SIGNER)
    assert [r.sent for r in results] == [True]
    assert results[0].entry.attempts == 3
    with Outbox(db) as outbox:
        assert outbox.pending() == []
    attempts = [e.detail for e in db.audit_log(study_uid, action="exported") if e.detail.get("destination") == "pacs"]
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "failed"), (2, "failed"), (3, "sent")]
    assert "cannot be reached" in attempts[0]["error"]
    on_pacs = pacs.rest(f"/studies/{pacs.rest('/studies')[0]}/instances")
    assert any(i["MainDicomTags"]["SOPInstanceUID"] == results[0].entry.sop_instance_uid for i in on_pacs)
    db.close()


def test_retry_reports_a_missing_password_without_an_attempt(disposable_orthanc, tmp_path):
    pacs = disposable_orthanc
    client, db, study_uid = _study1_on(pacs, tmp_path)
    retrieve_into_store(client, db, study_uid, user=SIGNER)
    sign_report(db, study_uid)
    pacs.stop(crash=True)
    send_signed_report(db, client, study_uid, user=SIGNER)

    def no_password(name):
        raise PacsSettingsError(f"Enter the password for PACS '{name}'.")

    results = retry_outbox(db, no_password, user=SIGNER)
    assert [r.sent for r in results] == [False] and isinstance(results[0].error, PacsSettingsError)
    assert results[0].entry.attempts == 1  # the refused lookup is not a send attempt
    db.close()


def test_interrupted_retrieve_keeps_whole_files_and_resumes(disposable_orthanc, tmp_path):
    pacs = disposable_orthanc
    client, db, study_uid = _study1_on(pacs, tmp_path, timeout_s=5)

    def stop_after_first(done, total):
        if done == 1:
            pacs.stop(crash=True)  # the server dies after the first image

    with pytest.raises(PacsRetrieveIncompleteError) as caught:
        retrieve_into_store(client, db, study_uid, progress=stop_after_first)
    assert (caught.value.fetched, caught.value.total) == (1, 2)
    assert isinstance(caught.value.cause, PacsUnreachableError)
    folder = pacs_folder(study_uid)
    kept = sorted(folder.iterdir())
    assert len(kept) == 1 and kept[0].suffix == ".dcm"  # one whole image, no .part left over
    assert pydicom.dcmread(kept[0]).pixel_array.size > 0
    assert db.list_studies() == []  # not in the worklist until complete

    pacs.start()
    done = []
    record = retrieve_into_store(client, db, study_uid, progress=lambda d, t: done.append(d))
    assert done == [1, 2] and len(record.file_paths) == 2
    result = client.retrieve_study(study_uid, folder)  # a third call fetches nothing
    assert (result.fetched, result.reused) == (0, 2)
    assert len(db.load_study(study_uid).images) == 2
    db.close()


def test_a_server_that_never_answers_times_out():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel completes the handshake; nobody ever answers
        server = PacsServer(name="silent", url=f"http://127.0.0.1:{silent.getsockname()[1]}/dicom-web",
                            username="u", timeout_s=0.3)
        started = time.monotonic()
        with pytest.raises(PacsTimeoutError) as caught:
            PacsClient(server, "pw").search_studies(StudyQuery(modalities=()))
        assert time.monotonic() - started < 5
    assert "0.3 s" in caught.value.user_message


def test_nothing_listening_is_unreachable():
    server = PacsServer(name="gone", url=f"http://127.0.0.1:{free_port()}/dicom-web", timeout_s=2)
    with pytest.raises(PacsUnreachableError) as caught:
        PacsClient(server).search_studies(StudyQuery())
    assert "cannot be reached" in caught.value.user_message
