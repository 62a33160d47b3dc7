"""Window/level to 8-bit display, and the named window presets.

The mapping is linear: `center - width/2` -> 0 and `center + width/2` -> 255, clipped
outside. (DICOM's LINEAR formula differs by half a level, which no one can see.)

Presets (CR/DX values have no fixed unit, so lung and bone are defined from the image's
own intensity distribution, percentiles over a subsampled grid of pixels, display
orientation: brighter = denser):
- "default": the file's window (VOI), else the full range;
- "full":    min .. max of the pixels;
- "lung":    1st .. 60th percentile — the dark half of a chest film (aerated lung,
             vessels, soft tissue edges) spread over the whole grey scale;
- "bone":    35th .. 99.5th percentile — the bright part (mediastinum, ribs, spine,
             clavicles) spread out, ignoring the brightest 0.5 % (markers, devices).
"""
from __future__ import annotations

import numpy as np

from rrg_desk.imaging.types import Window, XrayImage

PRESETS = ("default", "full", "lung", "bone")

_PERCENTILE_PRESETS = {"lung": (1.0, 60.0), "bone": (35.0, 99.5)}
_PERCENTILE_SAMPLES = 256 * 256  # enough for stable percentiles, fast on 4k x 4k images


def apply_window(pixels: np.ndarray, window: Window, invert: bool = False) -> np.ndarray:
    """HxW values -> HxW uint8 (C-contiguous, ready for a QImage)."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {pixels.shape}")
    low = window.center - window.width / 2.0
    scale = 255.0 / window.width
    # Vectorised float32 arithmetic: measured ~5 ms for 2048x2048 on one core, about twice
    # as fast as a lookup table even for integer pixels (gather is slower than 3 passes).
    out = _window_arithmetic(pixels, low, scale)
    if invert:
        np.subtract(255, out, out=out)
    return out


def _window_arithmetic(pixels: np.ndarray, low: float, scale: float) -> np.ndarray:
    # float32 throughout and in place: one temporary, no float64 copy
    work = np.subtract(pixels, np.float32(low), dtype=np.float32)
    work *= np.float32(scale)
    np.clip(work, 0.0, 255.0, out=work)
    work += np.float32(0.5)  # round half up on the cast below
    return work.astype(np.uint8)


def preset_window(image: XrayImage, name: str) -> Window:
    """The named preset's window for this image; ValueError for a name not in PRESETS."""
    if name == "default":
        return image.display_window()
    if name == "full":
        return image.full_range_window()
    if name not in _PERCENTILE_PRESETS:
        raise ValueError(f"unknown window preset {name!r}; choose one of {PRESETS}")
    low_pct, high_pct = _PERCENTILE_PRESETS[name]
    sample = _subsample(image.pixels)
    low, high = (float(v) for v in np.percentile(sample, [low_pct, high_pct]))
    if not high > low:  # flat region of the histogram: fall back to the whole range
        return image.full_range_window()
    return Window(center=(low + high) / 2.0, width=high - low)


def _subsample(pixels: np.ndarray) -> np.ndarray:
    step = max(1, int(np.sqrt(pixels.size / _PERCENTILE_SAMPLES)))
    return pixels[::step, ::step]
