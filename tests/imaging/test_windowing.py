"""apply_window maps linearly and clips; presets follow their documented definitions."""
from __future__ import annotations

import time

import numpy as np
import pytest

from rrg_desk.imaging import PRESETS, Window, XrayImage, apply_window, preset_window


def test_linear_mapping_and_clipping():
    pixels = np.array([[0, 50, 100, 150, 200, 250]], dtype=np.float32)
    out = apply_window(pixels, Window(center=150, width=100))  # 100 -> 0, 200 -> 255
    assert out.dtype == np.uint8 and out.shape == pixels.shape
    assert out.tolist() == [[0, 0, 0, 128, 255, 255]]


def test_invert():
    pixels = np.array([[100, 150, 200]], dtype=np.float32)
    normal = apply_window(pixels, Window(150, 100))
    inverted = apply_window(pixels, Window(150, 100), invert=True)
    np.testing.assert_array_equal(inverted.astype(int), 255 - normal.astype(int))


def test_monotonic_on_a_ramp():
    pixels = np.linspace(-1000, 3000, 4001, dtype=np.float32).reshape(1, -1)
    out = apply_window(pixels, Window(1000, 2000)).ravel().astype(int)
    assert (np.diff(out) >= 0).all()
    assert out[0] == 0 and out[-1] == 255
    assert abs(int(out[2000]) - 128) <= 1  # the centre is mid-grey


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float64])
def test_integer_and_float_inputs_agree(dtype):
    values = np.arange(0, 250, dtype=np.float32).reshape(10, 25)
    window = Window(120, 90)
    np.testing.assert_array_equal(apply_window(values.astype(dtype), window), apply_window(values, window))


def test_input_is_not_modified_and_output_is_contiguous():
    pixels = np.arange(64, dtype=np.float32).reshape(8, 8)
    before = pixels.copy()
    out = apply_window(pixels[:, ::2], Window(30, 20))
    np.testing.assert_array_equal(pixels, before)
    assert out.flags["C_CONTIGUOUS"] and out.shape == (8, 4)


def test_rejects_non_2d():
    with pytest.raises(ValueError):
        apply_window(np.zeros((2, 2, 3), np.float32), Window(1, 1))


def test_large_image_windows_fast():
    pixels = np.random.default_rng(0).uniform(0, 4095, (2048, 2048)).astype(np.float32)
    window = Window(2000, 1500)
    apply_window(pixels, window)  # warm-up
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        apply_window(pixels, window)
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.050, f"2048x2048 window took {min(timings) * 1000:.1f} ms"


def _image(pixels, window=None):
    return XrayImage(pixels=np.asarray(pixels, dtype=np.float32), default_window=window)


def test_presets_names():
    assert PRESETS == ("default", "full", "lung", "bone")


def test_default_preset_is_file_window_else_full():
    pixels = np.arange(100, dtype=np.float32).reshape(10, 10)
    assert preset_window(_image(pixels, Window(40, 20)), "default") == Window(40, 20)
    assert preset_window(_image(pixels), "default") == Window(49.5, 99.0)


def test_full_preset_is_min_to_max():
    pixels = np.array([[-500, 0], [1500, 2500]], dtype=np.float32)
    assert preset_window(_image(pixels, Window(1, 1)), "full") == Window(1000.0, 3000.0)


def test_lung_and_bone_follow_percentiles():
    pixels = np.arange(10000, dtype=np.float32).reshape(100, 100)  # uniform 0..9999
    image = _image(pixels)
    lung, bone = preset_window(image, "lung"), preset_window(image, "bone")
    lung_lo, lung_hi = lung.center - lung.width / 2, lung.center + lung.width / 2
    bone_lo, bone_hi = bone.center - bone.width / 2, bone.center + bone.width / 2
    assert lung_lo == pytest.approx(100, abs=2) and lung_hi == pytest.approx(6000, abs=2)
    assert bone_lo == pytest.approx(3500, abs=2) and bone_hi == pytest.approx(9950, abs=2)


def test_lung_window_is_darker_than_bone_window_on_a_chest_like_histogram():
    rng = np.random.default_rng(1)
    lungs = rng.normal(800, 150, 60000)  # dark aerated lung
    bone = rng.normal(3000, 300, 40000)  # bright mediastinum/bone
    image = _image(np.concatenate([lungs, bone]).reshape(200, 500))
    assert preset_window(image, "lung").center < preset_window(image, "bone").center


def test_flat_image_presets_are_valid():
    image = _image(np.full((10, 10), 7.0))
    for name in PRESETS:
        assert preset_window(image, name).width > 0


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown window preset"):
        preset_window(_image(np.zeros((2, 2))), "soft tissue")
