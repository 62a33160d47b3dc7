"""load_studies: grouping, ordering, skipping, and errors returned instead of raised."""
from __future__ import annotations

import numpy as np

from rrg_desk.imaging import NotAnImageError, Study, ViewPosition, XrayImage, load_studies
from rrg_desk.imaging.errors import UnreadableFileError
from tests.fixtures_dicom import ramp, write_dicom, write_png

RAW = ramp(16, 16, 4095)


def test_two_dicoms_of_one_study_become_one_study_frontal_first(tmp_path):
    write_dicom(tmp_path / "a_lat.dcm", RAW, view="LL", study_uid="1.2.3")
    write_dicom(tmp_path / "b_pa.dcm", RAW, view="PA", study_uid="1.2.3")
    studies, errors = load_studies([tmp_path])
    assert errors == []
    assert len(studies) == 1
    study = studies[0]
    assert study.study_uid == "1.2.3"
    assert [im.view for im in study.images] == [ViewPosition.PA, ViewPosition.LATERAL]
    assert study.frontal is study.images[0] and study.lateral is study.images[1]
    assert study.patient.name == "TEST^PATIENT"
    assert (study.study_date, study.accession_number, study.description) == ("20240102", "ACC0001", "CHEST")


def test_dicoms_of_different_studies_are_separated(tmp_path):
    write_dicom(tmp_path / "x.dcm", RAW, study_uid="1.1")
    write_dicom(tmp_path / "sub" / "y.dcm", RAW, study_uid="2.2") if (tmp_path / "sub").mkdir() is None else None
    studies, errors = load_studies([tmp_path])
    assert sorted(s.study_uid for s in studies) == ["1.1", "2.2"]
    assert errors == []


def test_png_folder_is_one_study_with_stable_uid(tmp_path):
    folder = tmp_path / "patient42"
    folder.mkdir()
    write_png(folder / "chest_lateral.png", ramp(8, 8, 255, np.uint8))
    write_png(folder / "chest_pa.png", ramp(8, 8, 255, np.uint8))
    first, _ = load_studies([folder])
    again, _ = load_studies([str(folder)])
    assert len(first) == 1
    assert [im.view for im in first[0].images] == [ViewPosition.PA, ViewPosition.LATERAL]
    assert first[0].study_uid == again[0].study_uid
    assert first[0].study_uid.startswith("2.25.")
    assert all(im.study_uid == first[0].study_uid for im in first[0].images)


def test_png_folders_are_separate_studies(tmp_path):
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        write_png(tmp_path / name / "img.png", ramp(8, 8, 255, np.uint8))
    studies, _ = load_studies([tmp_path])
    assert len(studies) == 2
    assert studies[0].study_uid != studies[1].study_uid


def test_mixed_good_and_bad_files(tmp_path):
    write_dicom(tmp_path / "good.dcm", RAW, study_uid="9.9")
    write_dicom(tmp_path / "nopix.dcm", RAW, drop_pixel_data=True, study_uid="9.9")
    (tmp_path / "garbage.bin").write_bytes(b"\x01\x02" * 100)
    (tmp_path / "notes.txt").write_text("not an image")  # skipped silently while walking
    (tmp_path / ".hidden.dcm").write_bytes(b"junk")  # hidden: skipped
    (tmp_path / "DICOMDIR").write_bytes(b"junk")  # index file: skipped
    studies, errors = load_studies([tmp_path])
    assert [s.study_uid for s in studies] == ["9.9"]
    assert len(studies[0].images) == 1
    assert sorted(e.path.name for e in errors) == ["garbage.bin", "nopix.dcm"]


def test_explicitly_named_non_image_is_reported(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("report text")
    studies, errors = load_studies([notes])
    assert studies == []
    assert len(errors) == 1 and isinstance(errors[0], NotAnImageError)


def test_missing_path_is_an_error_not_an_exception(tmp_path):
    studies, errors = load_studies([tmp_path / "gone"])
    assert studies == [] and isinstance(errors[0], UnreadableFileError)


def test_same_file_twice_is_read_once(tmp_path):
    path = write_dicom(tmp_path / "a.dcm", RAW, study_uid="5.5")
    studies, _ = load_studies([path, tmp_path, str(path)])
    assert len(studies) == 1 and len(studies[0].images) == 1


def test_copies_of_one_instance_are_deduplicated(tmp_path):
    write_dicom(tmp_path / "a.dcm", RAW, study_uid="5.5", sop_uid="5.5.1")
    write_dicom(tmp_path / "copy_of_a.dcm", RAW, study_uid="5.5", sop_uid="5.5.1")
    studies, _ = load_studies([tmp_path])
    assert len(studies[0].images) == 1


def test_unknown_views_sit_between_frontal_and_lateral(tmp_path):
    write_dicom(tmp_path / "1.dcm", RAW, view="LL", study_uid="7.7")
    write_dicom(tmp_path / "2.dcm", RAW, view=None, study_uid="7.7")
    write_dicom(tmp_path / "3.dcm", RAW, view="AP", study_uid="7.7")
    studies, _ = load_studies([tmp_path])
    assert [im.view for im in studies[0].images] == [ViewPosition.AP, ViewPosition.UNKNOWN, ViewPosition.LATERAL]


def test_symlink_loop_terminates(tmp_path):
    write_dicom(tmp_path / "a.dcm", RAW, study_uid="3.3")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    studies, errors = load_studies([tmp_path])
    assert len(studies) == 1 and len(studies[0].images) == 1 and errors == []


def test_the_primary_image_is_the_frontal_view_else_the_first():
    lateral = XrayImage(np.zeros((4, 4), np.float32), view=ViewPosition.LATERAL)
    other_lateral = XrayImage(np.zeros((4, 4), np.float32), view=ViewPosition.LATERAL)
    pa = XrayImage(np.zeros((4, 4), np.float32), view=ViewPosition.PA)
    assert Study("1.2", [lateral, pa]).primary_image is pa
    assert Study("1.2", [lateral, other_lateral]).primary_image is lateral  # lateral-only: the first
