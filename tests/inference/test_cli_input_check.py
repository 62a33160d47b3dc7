"""`rrg-desk draft` on images that are not chest radiographs: a non-zero exit with one line on
stderr, never a traceback; --draft-anyway drafts them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.data import get_testdata_file

from rrg_desk.inference.cli import EXIT_BAD_INPUT, main
from rrg_desk.paths import samples_dir
from tests.fixtures_dicom import write_dicom, write_png

WHEEL_FILES = Path(pydicom.data.__file__).parent / "test_files"
ROOT = Path(__file__).resolve().parents[2]


def _local(name: str) -> Path:
    if not (WHEEL_FILES / name).is_file():
        pytest.skip(f"{name} is not in the local pydicom wheel")
    return Path(get_testdata_file(name))


def _generated(kind: str, folder: Path) -> Path:
    rng = np.random.default_rng(0)
    chest = pydicom.dcmread(samples_dir() / "study1" / "01_pa.dcm").pixel_array
    if kind.startswith("grey"):
        side = int(kind[4:])
        return write_png(folder / f"{kind}.png", np.full((side, side), 128, np.uint8))
    if kind == "noise":
        return write_png(folder / "noise.png", rng.integers(0, 256, (300, 300), dtype=np.uint8))
    if kind == "mask":
        return write_png(folder / "mask.png", (np.add.outer(np.arange(300), np.arange(300)) > 300).astype(np.uint8))
    if kind == "strip":
        return write_png(folder / "strip.png", np.tile((chest[:150] >> 4).astype(np.uint8), (1, 3)))
    return write_dicom(folder / f"{kind}.dcm", chest, bits_stored=12, modality=kind)


REFUSED = ["grey1", "grey16", "grey512", "noise", "mask", "strip", "MR", "CT", "US", "SEG", "RTDOSE"]
PYDICOM_REFUSED = ["MR_small.dcm", "CT_small.dcm", "rtdose_1frame.dcm", "liver_1frame.dcm", "JPEG2000.dcm"]


def _one_line_refusal(capsys, argv) -> str:
    assert main(argv) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("rrg-desk draft: ") and "\n" not in err and "Traceback" not in err
    assert captured.out == ""
    return err


@pytest.mark.parametrize("kind", REFUSED)
def test_generated_non_radiographs_exit_with_one_line(tiny_bundle, tmp_path, capsys, kind):
    path = _generated(kind, tmp_path)
    err = _one_line_refusal(capsys, [str(path), "--bundle", str(tiny_bundle), "--device", "cpu"])
    assert path.name in err


@pytest.mark.parametrize("name", PYDICOM_REFUSED)
def test_pydicom_non_radiographs_exit_with_one_line(tiny_bundle, capsys, name):
    err = _one_line_refusal(capsys, [str(_local(name)), "--bundle", str(tiny_bundle), "--device", "cpu"])
    assert name in err and "--draft-anyway" in err


def test_draft_anyway_drafts_a_refused_image(tiny_bundle, tmp_path, capsys):
    path = _generated("MR", tmp_path)
    code = main([str(path), "--bundle", str(tiny_bundle), "--device", "cpu", "--no-finding-heatmaps",
                 "--draft-anyway"])
    assert code == 0 and "IMPRESSION:" in capsys.readouterr().out


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    """A real process: stderr is what a user sees, logging handlers included."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rrg_desk", "draft", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=ROOT)


@pytest.mark.parametrize("name", ["JPEG-lossy.dcm", "JPEG2000-embedded-sequence-delimiter.dcm"])
def test_pydicom_decoder_failures_print_one_line_and_no_traceback(tiny_bundle, name):
    """pydicom logs a traceback for every decoder that fails on these two; the user sees one line."""
    done = _run_cli(str(_local(name)), "--bundle", str(tiny_bundle))
    assert done.returncode == EXIT_BAD_INPUT
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"rrg-desk draft: {name}: ") and "could not be decoded" in lines[0]


def test_a_refused_image_in_a_real_process_prints_one_line(tiny_bundle, tmp_path):
    done = _run_cli(str(_generated("CT", tmp_path)), "--bundle", str(tiny_bundle), "--device", "cpu")
    assert done.returncode == EXIT_BAD_INPUT and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "a CT image" in done.stderr, done.stderr
