"""Shared helpers of the PACS tests: a server entry for the test Orthanc, a signed report."""
from __future__ import annotations

import io

import pydicom

from rrg_desk.pacs import PacsServer
from rrg_desk.reports.document import ReportDocument, ReportSentence
from rrg_desk.store import Database, SignedReport

FINDINGS = "The cardiomediastinal silhouette is normal. There is a small left pleural effusion."
IMPRESSION = "Small left pleural effusion."
SIGNER = "Dr Test Radiologist"


def server_for(orthanc, name: str = "test-pacs", timeout_s: float = 10.0) -> PacsServer:
    return PacsServer(name=name, url=orthanc.dicomweb_url, username=orthanc.auth[0], timeout_s=timeout_s)


def sign_report(db: Database, study_uid: str) -> SignedReport:
    document = ReportDocument(study_uid=study_uid,
                              findings=[ReportSentence(text=t) for t in
                                        ("The cardiomediastinal silhouette is normal.",
                                         "There is a small left pleural effusion.")],
                              impression=[ReportSentence(text=IMPRESSION)])
    return db.sign(study_uid, document, SIGNER, flags_reviewed=[])


def sr_texts(dataset: pydicom.Dataset) -> dict[str, str]:
    """Concept meaning -> text of the SR's reported TEXT items (CONTAINS; observation context
    is left out), anywhere in the tree: TID 2000 puts them in Findings / Impressions / Addendum."""
    texts = {}
    for item in dataset.get("ContentSequence", []):
        if item.ValueType == "TEXT" and item.RelationshipType == "CONTAINS":
            texts[item.ConceptNameCodeSequence[0].CodeMeaning] = item.TextValue
        texts.update({k: v for k, v in sr_texts(item).items() if k not in texts})
    return texts


def evidence_sop_uids(dataset: pydicom.Dataset) -> set[str]:
    return {sop.ReferencedSOPInstanceUID
            for study in dataset.CurrentRequestedProcedureEvidenceSequence
            for series in study.ReferencedSeriesSequence
            for sop in series.ReferencedSOPSequence}


def read_dicom(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))
