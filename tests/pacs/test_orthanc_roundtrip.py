"""Round trip against a real Orthanc: QIDO search, WADO retrieve into the store, STOW the SR."""
from __future__ import annotations

import logging
import os
from datetime import date
from pathlib import Path

import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass

from rrg_desk.pacs import (
    CredentialStore, Outbox, PacsClient, StudyQuery, client_for, pacs_folder, retrieve_into_store,
    save_servers, send_signed_report,
)
from rrg_desk.paths import samples_dir
from rrg_desk.reports.export.dicom_sr import person_name
from rrg_desk.store import Database
from tests.pacs.conftest import ORTHANC_PASSWORD
from tests.pacs.helpers import FINDINGS, IMPRESSION, SIGNER, evidence_sop_uids, server_for, sign_report, sr_texts


def _sample_headers() -> dict[str, pydicom.Dataset]:
    """study uid -> header of its first sample file (the expected search results)."""
    headers = {}
    for path in sorted(samples_dir().glob("*/*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        headers.setdefault(ds.StudyInstanceUID, ds)
    return headers


@pytest.fixture
def client(orthanc) -> PacsClient:
    return PacsClient(server_for(orthanc), ORTHANC_PASSWORD)


def test_search_filters_match_the_sample_headers(client):
    samples = _sample_headers()
    everything = client.search_studies(StudyQuery(modalities=()))
    assert {h.study_uid for h in everything} >= set(samples)

    for uid, header in samples.items():
        by_id = client.search_studies(StudyQuery(patient_id=str(header.PatientID)))
        assert [h.study_uid for h in by_id] == [uid]
        assert by_id[0].patient_name == str(header.PatientName)
        assert by_id[0].study_date == header.StudyDate
        by_accession = client.search_studies(StudyQuery(accession=str(header.AccessionNumber)))
        assert [h.study_uid for h in by_accession] == [uid]
        last_name = str(header.PatientName).split("^")[-1].lower()  # typed in lower case, as people do
        assert uid in {h.study_uid for h in client.search_studies(StudyQuery(patient_name=f"sample {last_name}"))}

    for modality in ("CR", "DX"):
        expected = {uid for uid, h in samples.items() if h.Modality == modality}
        hits = client.search_studies(StudyQuery(modalities=(modality,)))
        assert {h.study_uid for h in hits} == expected
        assert all(modality in h.modalities for h in hits)

    dates = sorted(h.StudyDate for h in samples.values())
    low, high = dates[1], dates[2]
    in_range = client.search_studies(StudyQuery(date_from=date(int(low[:4]), int(low[4:6]), int(low[6:])),
                                                date_to=date(int(high[:4]), int(high[4:6]), int(high[6:]))))
    assert sorted(h.study_date for h in in_range) == [low, high]
    assert client.search_studies(StudyQuery(patient_id="NOBODY-HERE")) == []


def test_retrieve_into_store_then_sign_and_store_the_sr(orthanc, client, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # everything, including dicomweb-client and urllib3 debug lines
    study1 = sorted((samples_dir() / "study1").glob("*.dcm"))
    source = [pydicom.dcmread(p, stop_before_pixels=True) for p in study1]
    study_uid = source[0].StudyInstanceUID
    source_sops = {ds.SOPInstanceUID for ds in source}
    server = server_for(orthanc)
    save_servers([server])
    credentials = CredentialStore(use_keychain=False)
    credentials.remember(server, ORTHANC_PASSWORD)

    db = Database.open(tmp_path / "desk.sqlite3")
    progress = []
    record = retrieve_into_store(client_for(server, credentials), db, study_uid, user=SIGNER,
                                 progress=lambda done, total: progress.append((done, total)))
    assert progress == [(1, 2), (2, 2)]
    assert record.study_uid == study_uid and record.patient_id == source[0].PatientID
    assert {Path(p).parent for p in record.file_paths} == {pacs_folder(study_uid).resolve()}
    study = db.load_study(study_uid)  # opens from the retrieved files
    assert {im.sop_instance_uid for im in study.images} == source_sops
    assert [s.study_uid for s in db.list_studies()] == [study_uid]

    report = sign_report(db, study_uid)
    result = send_signed_report(db, client, study_uid, user=SIGNER)
    assert result.sent, result.message
    with Outbox(db) as outbox:
        assert outbox.pending() == []
    sent = [e for e in db.audit_log(study_uid, action="exported") if e.detail.get("destination") == "pacs"]
    assert [e.detail["outcome"] for e in sent] == ["sent"] and sent[0].detail["report_id"] == report.id

    # read the SR back from Orthanc over WADO-RS (an independent dicomweb-client, not ours)
    reader = DICOMwebClient(orthanc.dicomweb_url, session=create_session_from_user_pass(*orthanc.auth))
    sr_entries = reader.search_for_instances(study_instance_uid=study_uid, search_filters={"Modality": "SR"})
    assert len(sr_entries) == 1
    entry = pydicom.Dataset.from_json(sr_entries[0])
    sr = reader.retrieve_instance(study_uid, entry.SeriesInstanceUID, entry.SOPInstanceUID)
    assert sr.SOPInstanceUID == result.entry.sop_instance_uid
    assert sr.StudyInstanceUID == study_uid
    assert sr.PatientID == source[0].PatientID
    texts = sr_texts(sr)
    assert texts["Finding"] == FINDINGS and texts["Impression"] == IMPRESSION
    assert evidence_sop_uids(sr) == source_sops
    assert sr.VerificationFlag == "VERIFIED" and str(sr.VerifyingObserverSequence[0].VerifyingObserverName) == person_name(SIGNER)

    # sending again changes nothing (the queued entry is already sent)
    again = send_signed_report(db, client, study_uid, user=SIGNER)
    assert again.sent and again.entry.id == result.entry.id
    assert len(reader.search_for_instances(study_instance_uid=study_uid, search_filters={"Modality": "SR"})) == 1
    db.close()

    # the password is in no log line and no file of the user data folder (settings, database)
    assert "dicomweb_client" in {r.name.split(".")[0] for r in caplog.records}  # the logs were captured
    assert ORTHANC_PASSWORD not in caplog.text
    data_dir = Path(os.environ["RRG_DESK_DATA_DIR"])
    for path in [*data_dir.rglob("*"), *tmp_path.rglob("*")]:
        if path.is_file():
            assert ORTHANC_PASSWORD.encode() not in path.read_bytes(), path
