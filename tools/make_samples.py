"""Regenerate resources/samples/ (the sample DICOM studies) from ../shared/data/covid_cxr.

    .venv/bin/python tools/make_samples.py [--data ../shared/data] [--out resources/samples]

Deterministic: the same inputs give byte-identical files (UIDs come from a fixed entropy
source, dates are fixed). Only images whose licence is CC BY / CC BY-SA / CC BY 4.0 are
used; each is listed with its attribution in ATTRIBUTION.md and attribution.json.

What is synthetic (and says so in the header): patient names/IDs, UIDs, dates, accession
numbers, and the pixel spacing, which is ASSUMED: a 43 cm detector side spread over the
longer image side (the source PNGs carry no spacing). The 8-bit source values are scaled
to 12 bits stored in 16 (x 4095/255, nothing added); the default window reproduces the
original 8-bit look.
"""
from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

ROOT = Path(__file__).resolve().parent.parent
ALLOWED_LICENCES = ("CC BY", "CC BY-SA", "CC BY 4.0")
DETECTOR_SIDE_MM = 430.0
CR_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1")
DX_PRESENTATION_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1.1")
SOP_CLASS = {"CR": CR_STORAGE, "DX": DX_PRESENTATION_STORAGE}


@dataclass(frozen=True)
class SampleImage:
    source_id: str
    view: str  # DICOM View Position
    series_description: str
    comment: str = ""


@dataclass(frozen=True)
class SampleStudy:
    folder: str
    patient_name: str
    patient_id: str
    patient_sex: str
    study_date: str
    accession: str
    description: str
    modality: str
    transfer_syntax: str
    images: tuple[SampleImage, ...]


# No CC BY-licensed lateral view exists in the data, so study1 (what `make run` opens) is
# the one patient with two licensed frontal images, clearly labelled as a sample pairing.
STUDIES = (
    SampleStudy(
        folder="study1", patient_name="SAMPLE^ONE", patient_id="SAMPLE-0001", patient_sex="",
        study_date="20240105", accession="SAMPLE0001", description="XR CHEST PA (SAMPLE, 2 IMAGES)",
        modality="DX", transfer_syntax=ExplicitVRLittleEndian,
        images=(
            SampleImage("41182_2020_203_Fig4_HTML", "PA", "PA illness day 10 (sample pairing)",
                        "SAMPLE: two frontal images of one patient taken on illness days 10 and 13, "
                        "combined into one study for demonstration; no licensed lateral view exists."),
            SampleImage("41182_2020_203_Fig5_HTML", "PA", "PA illness day 13 (sample pairing)",
                        "SAMPLE: second frontal image of the same patient (illness day 13), "
                        "combined into this study for demonstration."),
        ),
    ),
    SampleStudy(
        folder="study2", patient_name="SAMPLE^TWO", patient_id="SAMPLE-0002", patient_sex="",
        study_date="20240212", accession="SAMPLE0002", description="XR CHEST PA (SAMPLE)",
        modality="CR", transfer_syntax=ExplicitVRLittleEndian,
        images=(SampleImage("41182_2020_203_Fig3_HTML", "PA", "PA"),),
    ),
    SampleStudy(
        folder="study3", patient_name="SAMPLE^THREE", patient_id="SAMPLE-0003", patient_sex="",
        study_date="20240318", accession="SAMPLE0003", description="XR CHEST (SAMPLE)",
        modality="CR", transfer_syntax=RLELossless,
        images=(SampleImage("ARDSSevere", "PA", "PA"),),
    ),
    SampleStudy(
        folder="study4", patient_name="SAMPLE^FOUR", patient_id="SAMPLE-0004", patient_sex="",
        study_date="20240422", accession="SAMPLE0004", description="XR CHEST PA (SAMPLE)",
        modality="DX", transfer_syntax=RLELossless,
        images=(SampleImage("X-ray_of_cyst_in_pneumocystis_pneumonia_1", "PA", "PA",
                            "Source figure marks a cyst with an arrow (burned-in annotation)."),),
    ),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "samples")
    args = parser.parse_args(argv)
    entries = _annotation_index(args.data / "covid_cxr" / "annotation.json")
    if args.out.exists():
        shutil.rmtree(args.out)
    attribution = []
    for study in STUDIES:
        folder = args.out / study.folder
        folder.mkdir(parents=True)
        study_uid = _uid("study", study.folder)
        series_uid = _uid("series", study.folder)
        for number, sample in enumerate(study.images, start=1):
            entry = entries[sample.source_id]
            if entry["license"].strip() not in ALLOWED_LICENCES:
                raise SystemExit(f"{sample.source_id}: licence {entry['license']!r} not allowed")
            pixels8 = np.asarray(Image.open(args.data / "covid_cxr" / "images" / entry["image_path"][0]).convert("L"))
            ds = _dataset(study, sample, number, study_uid, series_uid, pixels8, entry)
            name = f"{number:02d}_{sample.view.lower()}.dcm"
            ds.save_as(folder / name, enforce_file_format=True)
            attribution.append(_attribution(study, sample, name, entry, ds))
    _write_attribution(args.out, attribution)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {len(attribution)} images in {len(STUDIES)} studies to {args.out} ({total / 1e6:.2f} MB)")
    return 0


def _annotation_index(path: Path) -> dict[str, dict]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {entry["id"]: entry for split in data.values() for entry in split}


def _uid(*parts: str) -> str:
    return generate_uid(entropy_srcs=["rrg-desk-sample-studies", *parts])


def _spacing_mm(pixels: np.ndarray) -> float:
    return round(DETECTOR_SIDE_MM / max(pixels.shape), 4)


def _dataset(study: SampleStudy, sample: SampleImage, number: int, study_uid: str,
             series_uid: str, pixels8: np.ndarray, entry: dict) -> Dataset:
    sop_uid = _uid("image", study.folder, sample.source_id)
    stored = np.round(pixels8.astype(np.float64) * (4095.0 / 255.0)).astype(np.uint16)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SOPClassUID = SOP_CLASS[study.modality]
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study.study_date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = f"09{number:02d}00"
    ds.AccessionNumber = study.accession
    ds.Modality = study.modality
    ds.Manufacturer = "RRG Desk sample generator"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = study.description
    ds.SeriesDescription = sample.series_description
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = study.patient_sex
    ds.PatientIdentityRemoved = "YES"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = sample.view
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = study.accession[-4:]
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.PatientOrientation = ["R", "F"] if sample.view in ("PA", "AP") else ["P", "F"]
    if study.modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
    ds.BurnedInAnnotation = "YES" if "arrow" in (sample.comment + entry.get("report", "")).lower() else "NO"
    ds.DerivationDescription = (
        f"Converted from an 8-bit PNG of the COVID-19 image data collection ({entry['id']}); "
        "values scaled x4095/255 to 12 bits; pixel spacing assumed (43 cm over the longer side)."
    )
    comment = f"Source: {entry['source_url']} ({entry['license'].strip()})."
    ds.ImageComments = f"{sample.comment} {comment}".strip()
    spacing = _spacing_mm(pixels8)
    ds.PixelSpacing = [spacing, spacing]
    ds.ImagerPixelSpacing = [spacing, spacing]
    ds.PixelSpacingCalibrationType = "GEOMETRY"  # i.e. not calibrated: assumed geometry
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.WindowCenter, ds.WindowWidth = 2047.5, 4095  # the source PNG's own look
    ds.WindowCenterWidthExplanation = "SOURCE"
    ds.VOILUTFunction = "LINEAR"
    # the published figure may have been JPEG-compressed before it reached us
    ds.LossyImageCompression = "01" if entry["orig_file"].lower().endswith((".jpg", ".jpeg")) else "00"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "RRG_DESK_SAMPLES"
    ds.file_meta = meta
    ds.PixelData = stored.tobytes()
    ds["PixelData"].VR = "OW"
    if study.transfer_syntax != ExplicitVRLittleEndian:
        ds.compress(study.transfer_syntax, encoding_plugin="pydicom", generate_instance_uid=False)
    return ds


def _attribution(study: SampleStudy, sample: SampleImage, name: str, entry: dict, ds: Dataset) -> dict:
    return {
        "file": f"{study.folder}/{name}",
        "source_id": entry["id"],
        "source_dataset": "COVID-19 image data collection (ieee8023/covid-chestxray-dataset), via ../shared/data/covid_cxr",
        "source_url": entry["source_url"],
        "doi": entry["doi"],
        "licence": entry["license"].strip(),
        "credit": entry.get("other_notes", ""),
        "view": sample.view,
        "modifications": [
            "resized by the dataset preparation to a longest side of at most 512 px, 8-bit greyscale",
            "values scaled from 8 to 12 bits (x 4095/255) and stored as DICOM "
            f"{ds.file_meta.TransferSyntaxUID.name}, MONOCHROME2",
            "synthetic header: anonymous patient, generated UIDs, fixed dates, "
            "assumed pixel spacing (43 cm over the longer image side)",
        ] + (["paired with another image of the same patient into one sample study"] if len(study.images) > 1 else []),
    }


def _write_attribution(out: Path, attribution: list[dict]) -> None:
    (out / "attribution.json").write_text(json.dumps(attribution, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# Sample studies: attribution",
        "",
        "Chest radiographs from the COVID-19 image data collection (Cohen et al., "
        "https://github.com/ieee8023/covid-chestxray-dataset), only images whose licence is CC BY, "
        "CC BY-SA or CC BY 4.0. The DICOM files here are adaptations of those images; each is "
        "distributed under the licence of its source (CC BY-SA sources: ShareAlike applies to "
        "that file). Headers are synthetic (anonymous names, generated UIDs, fixed dates, assumed "
        "pixel spacing). Regenerate with `tools/make_samples.py`.",
        "",
        "| file | source id | licence | source | doi | credit |",
        "|---|---|---|---|---|---|",
    ]
    for item in attribution:
        lines.append(
            f"| {item['file']} | {item['source_id']} | {item['licence']} | {item['source_url']} | "
            f"{item['doi'] or '-'} | {item['credit'] or '-'} |"
        )
    lines += [
        "",
        "The doi column is copied as recorded in the collection's metadata; where it disagrees "
        "with the source page, the source URL is authoritative.",
        "",
        "Modifications (which apply to which file: attribution.json):",
        "",
    ]
    modifications = sorted({m for item in attribution for m in item["modifications"]})
    lines += [f"- {m}" for m in modifications]
    (out / "ATTRIBUTION.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
