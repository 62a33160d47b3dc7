"""Truth table of the DICOM reader: each header branch with the pixel values it must give."""
from __future__ import annotations

import numpy as np
import pytest

from rrg_desk.imaging import ViewPosition, Window, read_image
from rrg_desk.imaging.errors import ImageReadError, NotAnImageError
from tests.fixtures_dicom import ramp, write_dicom

RAW12 = ramp(24, 40, 4095)  # 12-bit unsigned values 0..4095


def test_monochrome2_keeps_stored_values(tmp_path):
    image = read_image(write_dicom(tmp_path / "m2.dcm", RAW12, bits_stored=12))
    assert image.pixels.dtype == np.float32
    assert image.pixels.shape == RAW12.shape
    np.testing.assert_array_equal(image.pixels, RAW12)
    assert image.source_format == "DICOM"
    assert image.bits_stored == 12


def test_monochrome1_is_inverted_and_its_window_mirrored(tmp_path):
    path = write_dicom(tmp_path / "m1.dcm", RAW12, bits_stored=12, photometric="MONOCHROME1", window=(1000, 500))
    image = read_image(path)
    np.testing.assert_array_equal(image.pixels, 4095 - RAW12.astype(np.float32))
    # the file's window selected raw values 750..1250, i.e. 2845..3345 after inversion
    assert image.default_window == Window(center=3095.0, width=500.0)


def test_rescale_slope_intercept_applied(tmp_path):
    image = read_image(write_dicom(tmp_path / "r.dcm", RAW12, bits_stored=12, rescale=(0.5, -100.0)))
    np.testing.assert_allclose(image.pixels, RAW12 * 0.5 - 100.0)


def test_monochrome1_with_rescale_mirrors_the_rescaled_range(tmp_path):
    path = write_dicom(tmp_path / "m1r.dcm", RAW12, bits_stored=12, photometric="MONOCHROME1", rescale=(2.0, 10.0))
    image = read_image(path)
    # representable range after rescale is 10..8200, so value v becomes 8210 - v
    np.testing.assert_allclose(image.pixels, 8210.0 - (RAW12 * 2.0 + 10.0))


def test_signed_pixels_with_bits_stored_below_allocated(tmp_path):
    signed = ramp(16, 16, 2047, np.int16, bottom=-2048)
    image = read_image(write_dicom(tmp_path / "s.dcm", signed, bits_stored=12))
    np.testing.assert_array_equal(image.pixels, signed)
    assert image.pixels.min() == -2048


def test_signed_monochrome1_mirrors_around_the_signed_range(tmp_path):
    signed = ramp(8, 8, 2047, np.int16, bottom=-2048)
    image = read_image(write_dicom(tmp_path / "s1.dcm", signed, bits_stored=12, photometric="MONOCHROME1"))
    np.testing.assert_array_equal(image.pixels, -1 - signed.astype(np.float32))


def test_eight_bit_dicom(tmp_path):
    raw = ramp(10, 12, 255, np.uint8)
    image = read_image(write_dicom(tmp_path / "u8.dcm", raw))
    np.testing.assert_array_equal(image.pixels, raw)
    assert image.bits_stored == 8


def test_single_window_becomes_default(tmp_path):
    image = read_image(write_dicom(tmp_path / "w.dcm", RAW12, bits_stored=12, window=(1800, 3000)))
    assert image.default_window == Window(1800.0, 3000.0)
    assert image.display_window() == Window(1800.0, 3000.0)


def test_multi_valued_window_uses_first_pair(tmp_path):
    path = write_dicom(tmp_path / "mw.dcm", RAW12, bits_stored=12, window=([1500, 2500], [1000, 4000]))
    assert read_image(path).default_window == Window(1500.0, 1000.0)


def test_zero_width_window_is_ignored(tmp_path):
    image = read_image(write_dicom(tmp_path / "zw.dcm", RAW12, bits_stored=12, window=(100, 0)))
    assert image.default_window is None
    assert image.display_window() == image.full_range_window()


def test_no_window_means_full_range_display(tmp_path):
    image = read_image(write_dicom(tmp_path / "nw.dcm", RAW12, bits_stored=12))
    assert image.default_window is None
    assert image.display_window() == Window(center=2047.5, width=4095.0)


def test_voi_lut_sequence_is_applied_and_becomes_default(tmp_path):
    table = np.clip(np.sqrt(np.arange(4096)) * 64, 0, 4095).astype(int)  # non-linear LUT
    path = write_dicom(tmp_path / "lut.dcm", RAW12, bits_stored=12, voi_lut=(0, 12, table), window=(10, 20))
    image = read_image(path)
    np.testing.assert_array_equal(image.pixels, table[RAW12])
    assert image.default_window == Window(center=2047.5, width=4095.0)
    assert image.metadata["VOILUTApplied"] == "yes"


def test_voi_lut_with_first_mapped_value_clamps_below_and_above(tmp_path):
    table = np.arange(0, 256) * 16  # maps inputs 1000..1255 linearly, clamps outside
    image = read_image(write_dicom(tmp_path / "lut2.dcm", RAW12, bits_stored=12, voi_lut=(1000, 12, table)))
    expected = table[np.clip(RAW12.astype(int) - 1000, 0, 255)]
    np.testing.assert_array_equal(image.pixels, expected)


def test_voi_lut_and_monochrome1(tmp_path):
    table = (np.arange(4096) // 16).astype(int)  # 8-bit output
    path = write_dicom(tmp_path / "lut1.dcm", RAW12, bits_stored=12, voi_lut=(0, 8, table), photometric="MONOCHROME1")
    image = read_image(path)
    np.testing.assert_array_equal(image.pixels, 255 - table[RAW12])
    assert image.default_window == Window(center=127.5, width=255.0)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"view": "PA"}, ViewPosition.PA),
        ({"view": "AP"}, ViewPosition.AP),
        ({"view": "LL"}, ViewPosition.LATERAL),
        ({"view": "RL"}, ViewPosition.LATERAL),
        ({"view": "LATERAL"}, ViewPosition.LATERAL),
        ({"view": "LLD"}, ViewPosition.UNKNOWN),
        ({"view": None, "view_code": ("399067008", "SCT", "lateral")}, ViewPosition.LATERAL),
        ({"view": None, "view_code": ("R-10214", "SRT", "postero-anterior")}, ViewPosition.PA),
        ({"view": "", "view_code": ("99999", "99X", "antero-posterior")}, ViewPosition.AP),
        ({"view": None, "series_description": "CHEST LAT"}, ViewPosition.LATERAL),
        ({"view": None, "series_description": "Chest PA erect"}, ViewPosition.PA),
        ({"view": None, "series_description": "patient chest"}, ViewPosition.UNKNOWN),
        ({"view": None}, ViewPosition.UNKNOWN),
    ],
)
def test_view_position_sources(tmp_path, kwargs, expected):
    assert read_image(write_dicom(tmp_path / "v.dcm", RAW12, **kwargs)).view is expected


def test_pixel_spacing_preferred_over_imager_spacing(tmp_path):
    path = write_dicom(tmp_path / "sp.dcm", RAW12, spacing=(0.15, 0.16), imager_spacing=(0.2, 0.2))
    assert read_image(path).pixel_spacing_mm == (0.15, 0.16)


def test_imager_pixel_spacing_used_when_alone(tmp_path):
    path = write_dicom(tmp_path / "isp.dcm", RAW12, spacing=None, imager_spacing=(0.2, 0.25))
    assert read_image(path).pixel_spacing_mm == (0.2, 0.25)


def test_no_spacing_is_none(tmp_path):
    assert read_image(write_dicom(tmp_path / "ns.dcm", RAW12, spacing=None)).pixel_spacing_mm is None


def test_identifying_fields_are_filled(tmp_path):
    path = write_dicom(tmp_path / "id.dcm", RAW12, study_uid="1.2.3.4", sop_uid="1.2.3.4.5", patient_name="DOE^JANE", modality="DX")
    image = read_image(path)
    assert image.patient.name == "DOE^JANE"
    assert image.patient.patient_id == "TEST-0001"
    assert image.patient.birth_date == "19700101"
    assert image.patient.sex == "O"
    assert (image.study_uid, image.sop_instance_uid) == ("1.2.3.4", "1.2.3.4.5")
    assert image.series_uid
    assert (image.study_date, image.accession_number, image.study_description) == ("20240102", "ACC0001", "CHEST")
    assert image.modality == "DX"
    assert image.metadata["PhotometricInterpretation"] == "MONOCHROME2"
    assert image.source_path == path


def test_dicom_without_preamble_is_detected_by_content(tmp_path):
    path = write_dicom(tmp_path / "bare.img", RAW12, preamble=False)
    assert path.read_bytes()[128:132] != b"DICM"
    np.testing.assert_array_equal(read_image(path).pixels, RAW12)


def test_extension_does_not_matter(tmp_path):
    path = write_dicom(tmp_path / "looks_like.png", RAW12)
    assert read_image(path).source_format == "DICOM"


def _image_only_dataset(rows: int = 48, columns: int = 40) -> "pydicom.Dataset":
    """Image elements only (groups 0x0028 and 0x7FE0): no identifying group 0x0008/0x0010."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (np.arange(rows * columns) % 4096).astype(np.uint16).tobytes()
    return ds


@pytest.mark.parametrize("implicit", [True, False])
def test_data_set_without_file_meta_and_identifying_groups_is_read(tmp_path, implicit):
    path = tmp_path / "image-only.dcm"
    _image_only_dataset().save_as(path, implicit_vr=implicit, little_endian=True, enforce_file_format=False)
    assert path.read_bytes()[:2] == b"\x28\x00"  # starts at (0028,0002): once refused as "not a DICOM"
    image = read_image(path)
    assert (image.height, image.width) == (48, 40) and image.source_format == "DICOM"
    np.testing.assert_array_equal(image.pixels, np.arange(48 * 40).reshape(48, 40))


def test_broken_data_set_without_file_meta_gets_a_dicom_message(tmp_path):
    path = tmp_path / "cut.dcm"
    _image_only_dataset().save_as(path, implicit_vr=False, little_endian=True, enforce_file_format=False)
    data = path.read_bytes()
    path.write_bytes(data[:60])  # well-formed elements, then the file ends: no Pixel Data
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    assert not isinstance(caught.value, NotAnImageError) and "DICOM" in caught.value.user_message
    text = tmp_path / "notes.dcm"
    text.write_text("Hello, this is a note and not an image at all.\n" * 4)
    with pytest.raises(NotAnImageError):
        read_image(text)
