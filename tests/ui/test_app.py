"""The GUI entry point in a fresh process: fast imports, --screenshot, failures, --help."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from rrg_desk.ui.app import SHOWN_MARKER, build_arg_parser
from tests.ui.dicom_factory import write_test_dicom

ROOT = Path(__file__).resolve().parents[2]
HEAVY_MODULES = ("torch", "torchvision", "transformers", "open_clip", "matplotlib")


def run_python(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_showing_a_study_imports_no_heavy_module(study_dir):
    script = (
        "import sys\n"
        "from rrg_desk.ui.app import run_gui\n"
        f"code = run_gui([{str(study_dir)!r}, '--benchmark-startup'])\n"
        f"print('HEAVY', sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
        "sys.exit(code)\n"
    )
    proc = run_python("-c", script)
    assert proc.returncode == 0, proc.stderr
    assert SHOWN_MARKER in proc.stdout  # the study really was shown
    assert "HEAVY []" in proc.stdout, proc.stdout


def test_screenshot_writes_a_png_of_the_shown_study(study_dir, tmp_path):
    out = tmp_path / "shots" / "viewer.png"
    proc = run_python("-m", "rrg_desk", str(study_dir), "--screenshot", str(out), "--no-draft")
    assert proc.returncode == 0, proc.stderr
    grey = np.asarray(Image.open(out).convert("L"), dtype=np.float32)
    assert grey.shape == (1000, 1600)
    assert grey.std() > 20  # not a blank window
    assert (grey > 240).mean() > 0.01  # the bright end of the ramps is on screen


def test_screenshot_drafts_with_the_bundle_and_shows_the_draft(sample_study_dir, tiny_bundle, tmp_path):
    out = tmp_path / "workstation.png"
    proc = run_python("-m", "rrg_desk", str(sample_study_dir), "--screenshot", str(out), "--bundle", str(tiny_bundle),
                      timeout=180)
    assert proc.returncode == 0, proc.stderr
    rgb = np.asarray(Image.open(out).convert("RGB"), dtype=np.float32)
    assert rgb.shape == (1000, 1600, 3)
    # the findings bars and the tinted model text are coloured; a bare viewer is grey
    saturation = rgb.max(axis=2) - rgb.min(axis=2)
    assert (saturation > 80).mean() > 0.005


def test_screenshot_with_a_broken_bundle_fails_with_a_message(sample_study_dir, tmp_path):
    out = tmp_path / "never.png"
    proc = run_python("-m", "rrg_desk", str(sample_study_dir), "--screenshot", str(out), "--bundle", str(tmp_path),
                      timeout=180)
    assert proc.returncode != 0
    assert "drafting failed" in proc.stderr and "bundle" in proc.stderr.lower()
    assert not out.exists()


def test_screenshot_of_a_bad_file_fails_with_the_reason(tmp_path):
    bad = tmp_path / "random.dcm"
    bad.write_bytes(os.urandom(4096))
    out = tmp_path / "never.png"
    proc = run_python("-m", "rrg_desk", str(bad), "--screenshot", str(out))
    assert proc.returncode != 0
    assert "random.dcm" in proc.stderr
    assert not out.exists()


def test_screenshot_without_paths_shows_the_empty_window(tmp_path):
    out = tmp_path / "empty.png"
    proc = run_python("-m", "rrg_desk", "--screenshot", str(out))
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out).size == (1600, 1000)


def test_help_lists_the_options():
    proc = run_python("-m", "rrg_desk", "--help-gui")
    assert proc.returncode == 0
    assert "--screenshot" in proc.stdout and "paths" in proc.stdout


def test_argument_parser_accepts_files_and_folders(tmp_path):
    file_path = write_test_dicom(tmp_path / "a.dcm")
    args = build_arg_parser().parse_args([str(file_path), str(tmp_path), "--screenshot", "x.png"])
    assert args.paths == [file_path, tmp_path] and args.screenshot == Path("x.png")
