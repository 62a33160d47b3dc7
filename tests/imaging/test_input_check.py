"""The input check's rules: every refusal class on generated files, pydicom's own non-radiographs,
real chest radiographs passing, and the hook for a learned score."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.data import get_testdata_file

from rrg_desk.imaging import ViewPosition, load_studies, read_image
from rrg_desk.imaging.input_check import (
    MAX_ASPECT_RATIO,
    MIN_SIDE_PX,
    ExtremeAspectRatioError,
    ImageTooSmallError,
    InputRefusal,
    LearnedScores,
    LearnedThresholds,
    NearUniformImageError,
    NoiseImageError,
    NotARadiographObjectError,
    NotChestByModelError,
    TooFewGreyLevelsError,
    WrongBodyPartError,
    WrongModalityError,
    check_image,
)
from rrg_desk.paths import samples_dir
from tests.fixtures_dicom import write_dicom, write_jpeg, write_png

WHEEL_FILES = Path(pydicom.data.__file__).parent / "test_files"
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"


@pytest.fixture(scope="module")
def chest_pixels() -> np.ndarray:
    """A real chest radiograph's stored values (the bundled sample), so only the header differs."""
    return pydicom.dcmread(samples_dir() / "study1" / "01_pa.dcm").pixel_array


def _refusal(path: Path) -> InputRefusal | None:
    result = check_image(read_image(path))
    return result.refusals[0] if result.refusals else None


def _local(name: str) -> Path:
    """A test file inside the installed pydicom wheel; skip rather than trigger a download."""
    if not (WHEEL_FILES / name).is_file():
        pytest.skip(f"{name} is not in the local pydicom wheel")
    return Path(get_testdata_file(name))


# --- header ------------------------------------------------------------------------------------
@pytest.mark.parametrize("modality, words", [("MR", "an MR image"), ("CT", "a CT image"), ("US", "ultrasound"),
                                             ("SEG", "segmentation"), ("RTDOSE", "dose"), ("NM", "nuclear"),
                                             ("PT", "PET"), ("MG", "mammogram")])
def test_other_modalities_are_refused_from_the_header(tmp_path, chest_pixels, modality, words):
    path = write_dicom(tmp_path / f"{modality}.dcm", chest_pixels, bits_stored=12, modality=modality)
    refusal = _refusal(path)
    assert isinstance(refusal, WrongModalityError)
    assert words in refusal.user_message and f"Modality {modality}" in refusal.user_message
    assert refusal.user_message.startswith(f"{modality}.dcm: ") and "\n" not in refusal.user_message


@pytest.mark.parametrize("modality", ["CR", "DX", "DR", "OT", ""])
def test_radiograph_modalities_go_on(tmp_path, chest_pixels, modality):
    path = write_dicom(tmp_path / "a.dcm", chest_pixels, bits_stored=12, modality=modality)
    assert check_image(read_image(path)).passed


@pytest.mark.parametrize("body_part, refused", [("CHEST", False), ("THORAX", False), ("PORT CHEST", False),
                                                ("", False), ("PORTABLE", False), ("KNEE", True),
                                                ("SKULL", True), ("CSPINE", True), ("ABDOMEN", True)])
def test_body_part_names_the_chest_or_nothing(tmp_path, chest_pixels, body_part, refused):
    path = write_dicom(tmp_path / "a.dcm", chest_pixels, bits_stored=12, modality="DX",
                       extra={"BodyPartExamined": body_part})
    refusal = _refusal(path)
    assert isinstance(refusal, WrongBodyPartError) if refused else refusal is None
    if refused:
        assert body_part in refusal.user_message and "not the chest" in refusal.user_message


@pytest.mark.parametrize("sop_class, refused", [(CT_IMAGE_STORAGE, "CT Image"), (RT_DOSE_STORAGE, "RT Dose"),
                                                (DX_FOR_PRESENTATION, ""), ("1.2.826.0.1.3680043.9.9999.1", "")])
def test_non_radiograph_sop_classes_are_refused(tmp_path, chest_pixels, sop_class, refused):
    """Modality OT (what many exports say) but the SOP class tells what the object is; a private
    class is left to the pixels."""
    path = write_dicom(tmp_path / "a.dcm", chest_pixels, bits_stored=12, modality="OT",
                       extra={"SOPClassUID": sop_class})
    refusal = _refusal(path)
    if refused:
        assert isinstance(refusal, NotARadiographObjectError) and refused in refusal.user_message
    else:
        assert refusal is None


@pytest.mark.parametrize("name, expected", [("MR_small.dcm", WrongModalityError), ("CT_small.dcm", WrongModalityError),
                                            ("rtdose_1frame.dcm", WrongModalityError),
                                            ("liver_1frame.dcm", WrongModalityError),
                                            ("JPEG2000.dcm", WrongModalityError)])
def test_pydicom_non_radiographs_are_refused(name, expected):
    refusal = _refusal(_local(name))
    assert isinstance(refusal, expected) and refusal.user_message.startswith(f"{name}: ")


# --- size and shape ----------------------------------------------------------------------------
@pytest.mark.parametrize("side", [1, 16])
def test_tiny_uniform_images_are_too_small_and_say_the_minimum(tmp_path, side):
    path = write_png(tmp_path / f"grey{side}.png", np.full((side, side), 128, np.uint8))
    refusal = _refusal(path)
    assert isinstance(refusal, ImageTooSmallError)
    assert f"at least {MIN_SIDE_PX} pixels" in refusal.user_message and f"{side} x {side}" in refusal.user_message


def test_a_downscaled_radiograph_below_the_minimum_is_too_small(tmp_path, chest_pixels):
    small = (chest_pixels[:: 8, :: 8] >> 4).astype(np.uint8)  # ~ 100 px: a thumbnail
    assert min(small.shape) < MIN_SIDE_PX
    assert isinstance(_refusal(write_png(tmp_path / "thumb.png", small)), ImageTooSmallError)


def test_an_extreme_aspect_ratio_is_refused(tmp_path, chest_pixels):
    rows = min(chest_pixels.shape[0], 200)
    strip = np.tile((chest_pixels[:rows] >> 4).astype(np.uint8), (1, 3))
    strip = strip[:, : int(rows * (MAX_ASPECT_RATIO + 1))]
    refusal = _refusal(write_png(tmp_path / "strip.png", strip))
    assert isinstance(refusal, ExtremeAspectRatioError) and f"{MAX_ASPECT_RATIO:g}:1" in refusal.user_message


# --- content -----------------------------------------------------------------------------------
def test_a_large_uniform_grey_image_is_blank(tmp_path):
    for path in (write_png(tmp_path / "grey.png", np.full((512, 512), 128, np.uint8)),
                 write_jpeg(tmp_path / "grey.jpg", np.full((512, 512), 128, np.uint8), quality=75)):
        refusal = _refusal(path)
        assert isinstance(refusal, NearUniformImageError) and "no anatomy" in refusal.user_message


def test_a_blank_image_with_a_small_label_is_near_uniform(tmp_path):
    pixels = np.full((512, 512), 20, np.uint8)
    pixels[10:30, 10:60] = 250  # a burned-in marker on an otherwise empty field
    assert isinstance(_refusal(write_png(tmp_path / "label.png", pixels)), NearUniformImageError)


@pytest.mark.parametrize("kind", ["uniform", "gaussian", "jpeg"])
def test_noise_is_refused(tmp_path, kind):
    rng = np.random.default_rng(0)
    if kind == "gaussian":
        pixels = np.clip(rng.normal(128, 20, (512, 512)), 0, 255).astype(np.uint8)
    else:
        pixels = rng.integers(0, 256, (512, 512), dtype=np.uint8)
    path = write_jpeg(tmp_path / "noise.jpg", pixels, quality=75) if kind == "jpeg" else \
        write_png(tmp_path / "noise.png", pixels)
    refusal = _refusal(path)
    assert isinstance(refusal, NoiseImageError) and "noise" in refusal.user_message


def test_a_binary_mask_has_too_few_grey_levels(tmp_path):
    mask = (np.add.outer(np.arange(512), np.arange(512)) > 500).astype(np.uint8) * 255
    refusal = _refusal(write_png(tmp_path / "mask.png", mask))
    assert isinstance(refusal, TooFewGreyLevelsError) and "2 grey levels" in refusal.user_message


# --- real radiographs pass ---------------------------------------------------------------------
def test_the_bundled_sample_radiographs_pass():
    studies, errors = load_studies([samples_dir()])
    assert not errors and studies
    for study in studies:
        for image in study.images:
            result = check_image(image)
            assert result.passed, result.user_message


def _some_real_images(per_set: int = 5) -> list[Path]:
    images = []
    for name, pattern in (("jsrt_scr", "images/*.png"), ("nih_cxr14", "images/*.jpg"), ("tb_cxr", "images/*.jpg"),
                          ("covid_cxr", "images/*/0.png"), ("cxr_report_pairs", "images/*/*.png")):
        images += sorted((SHARED_DATA / name).glob(pattern))[:per_set]
    return images


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not here")
def test_real_chest_radiographs_from_every_set_pass():
    images = _some_real_images()
    assert images
    for path in images:
        result = check_image(read_image(path))
        assert result.passed, result.user_message


@pytest.mark.skipif(not (SHARED_DATA / "jsrt_scr").is_dir(), reason="JSRT is not here")
def test_the_dimmest_real_radiographs_pass():
    """Five JSRT exports hold their anatomy in grey levels 237-255; they are still radiographs."""
    path = SHARED_DATA / "jsrt_scr" / "images" / "JPCLN078.png"
    if not path.is_file():
        pytest.skip("JPCLN078.png is not here")
    result = check_image(read_image(path))
    assert result.passed and result.measurements["contrast_std"] < 0.02


def test_the_rules_do_not_catch_a_greyscale_photograph(tmp_path):
    """A portrait photo has a radiograph's statistics: only a learned score can refuse it."""
    from matplotlib import cbook
    from PIL import Image

    photo = tmp_path / "portrait.png"
    Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("L").save(photo)
    image = read_image(photo)
    assert check_image(image).passed
    refused = check_image(image, lambda _image: LearnedScores(p_chest=0.03, p_lateral=0.2),
                          LearnedThresholds(p_chest=0.5))
    assert isinstance(refused.refusals[0], NotChestByModelError)
    assert "0.03" in refused.user_message and "0.50" in refused.user_message


# --- the learned hook --------------------------------------------------------------------------
def test_the_view_comes_from_the_header_else_from_the_learned_score(tmp_path, chest_pixels):
    lateral_scores = lambda _image: LearnedScores(p_chest=0.99, p_lateral=0.9)  # noqa: E731
    thresholds = LearnedThresholds()
    png = read_image(write_png(tmp_path / "0.png", (chest_pixels >> 4).astype(np.uint8)))
    assert png.view is ViewPosition.UNKNOWN
    assert check_image(png).view_source == "unknown"
    decided = check_image(png, lateral_scores, thresholds)
    assert decided.passed and decided.view is ViewPosition.LATERAL and decided.view_source == "model"
    pa = read_image(write_dicom(tmp_path / "pa.dcm", chest_pixels, bits_stored=12, view="PA"))
    from_header = check_image(pa, lateral_scores, thresholds)
    assert from_header.view is ViewPosition.PA and from_header.view_source == "header"


def test_without_thresholds_a_score_refuses_nothing(tmp_path, chest_pixels):
    image = read_image(write_dicom(tmp_path / "a.dcm", chest_pixels, bits_stored=12))
    result = check_image(image, lambda _image: LearnedScores(p_chest=0.0), None)
    assert result.passed and result.scores == LearnedScores(p_chest=0.0)
