"""The bundled sample studies load, have the documented views and carry attribution."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rrg_desk.imaging import ViewPosition, load_studies, read_image
from rrg_desk.paths import samples_dir

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
ALLOWED = {"CC BY", "CC BY-SA", "CC BY 4.0"}


def test_study1_exists_and_is_the_two_image_study():
    studies, errors = load_studies([samples_dir() / "study1"])
    assert errors == []
    assert len(studies) == 1
    study = studies[0]
    assert len(study.images) == 2
    assert all(im.view is ViewPosition.PA for im in study.images)
    assert study.patient.name == "SAMPLE^ONE"
    assert "SAMPLE" in study.description


def test_all_samples_load_as_separate_studies_with_expected_metadata():
    studies, errors = load_studies([samples_dir()])
    assert errors == []  # ATTRIBUTION.md / attribution.json are skipped while walking
    assert len(studies) >= 3
    assert len({s.study_uid for s in studies}) == len(studies)
    for study in studies:
        for image in study.images:
            assert image.modality in ("CR", "DX")
            assert image.metadata["PhotometricInterpretation"] == "MONOCHROME2"
            assert image.bits_stored == 12
            assert image.pixel_spacing_mm is not None and 0.3 < image.pixel_spacing_mm[0] < 1.5
            assert image.view is not ViewPosition.UNKNOWN
            assert image.patient.name.startswith("SAMPLE^")
            assert image.pixels.min() >= 0 and image.pixels.max() <= 4095
            assert image.pixels.std() > 100  # a real radiograph, not a blank


def test_samples_are_small():
    total = sum(p.stat().st_size for p in samples_dir().rglob("*") if p.is_file())
    assert total < 3_000_000


def test_every_sample_file_is_attributed_with_an_allowed_licence():
    attribution = json.loads((samples_dir() / "attribution.json").read_text(encoding="utf-8"))
    listed = {item["file"] for item in attribution}
    on_disk = {p.relative_to(samples_dir()).as_posix() for p in samples_dir().rglob("*.dcm")}
    assert listed == on_disk
    markdown = (samples_dir() / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for item in attribution:
        assert item["licence"] in ALLOWED
        assert item["source_url"].startswith("https://")
        assert item["modifications"]
        assert item["source_id"] in markdown and item["file"] in markdown


def test_compressed_sample_decodes():
    syntaxes = {read_image(p).metadata["TransferSyntax"] for p in samples_dir().rglob("*.dcm")}
    assert "RLE Lossless" in syntaxes and "Explicit VR Little Endian" in syntaxes


@pytest.mark.skipif(not (SHARED_DATA / "covid_cxr").is_dir(), reason="needs ../shared/data")
def test_make_samples_regenerates_identical_files(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_samples.py"), "--data", str(SHARED_DATA), "--out", str(tmp_path / "s")],
        check=True, capture_output=True, timeout=120,
    )
    for original in samples_dir().rglob("*"):
        if original.is_file():
            regenerated = tmp_path / "s" / original.relative_to(samples_dir())
            assert regenerated.read_bytes() == original.read_bytes(), original.name
