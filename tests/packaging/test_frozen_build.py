"""The PyInstaller bundle (`make package-test`; marked `packaging`, not part of `make test`).

Builds dist/rrg-desk with packaging/build.py (about 10-20 minutes on 2 shared cores, see
docs/packaging.md), then runs the frozen app as on a fresh machine: `env -i` with only HOME,
PATH=/usr/bin:/bin and LANG; no virtualenv, no PYTHONPATH, cwd outside the checkout.
RRG_DESK_FROZEN_APP=dist/rrg-desk reuses a finished build instead of building.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rrg_desk.ui.app import SHOWN_MARKER
from tests.packaging.helpers import ROOT, load_packaging_script

pytestmark = pytest.mark.packaging

BUILD_TIMEOUT_S = 3 * 3600


@pytest.fixture(scope="module")
def build_script():
    return load_packaging_script("build")


@pytest.fixture(scope="module")
def frozen_app(build_script) -> Path:
    reuse = os.environ.get("RRG_DESK_FROZEN_APP")
    if reuse:
        return Path(reuse).resolve()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RRG_DESK_RESOURCES")}
    # --random-bundle only applies while resources/models/default (the trained bundle) is missing
    proc = subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), "--random-bundle"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return ROOT / "dist" / "rrg-desk"


def run_clean(build_script, app: Path, home: Path, *args: str, extra_env: dict | None = None, timeout: float = 900):
    home.mkdir(parents=True, exist_ok=True)
    env = build_script.clean_env(home) | dict(extra_env or {})
    return subprocess.run([str(app / "rrg-desk"), *args], cwd=home, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_frozen_selftest_passes_in_a_clean_environment(build_script, frozen_app, tmp_path):
    proc = run_clean(build_script, frozen_app, tmp_path / "home", "--selftest", "--keep", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr[-5000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rrg-desk selftest: OK"), proc.stdout
    assert len(list((tmp_path / "out").iterdir())) == 6  # txt json fhir sr png pdf
    assert not (tmp_path / "home" / ".cache" / "huggingface").exists()  # nothing was fetched or cached


def test_frozen_app_ships_resources_qt_plugins_and_cuda(frozen_app):
    internal = frozen_app / "_internal"
    assert (internal / "resources" / "models" / "default" / "card.json").is_file()
    assert sorted(p.name for p in (internal / "resources" / "samples").glob("study*")) == \
        sorted(p.name for p in (ROOT / "resources" / "samples").glob("study*"))
    assert (internal / "resources" / "chexpert_phrases" / "phrases" / "mention").is_dir()
    platforms = internal / "PySide6" / "Qt" / "plugins" / "platforms"
    assert (platforms / "libqoffscreen.so").is_file() and (platforms / "libqxcb.so").is_file()
    assert (internal / "torch" / "lib" / "libtorch_cuda.so").is_file()  # CUDA support kept
    assert not (internal / "triton").exists()
    assert not (internal / "transformers").exists() and not (internal / "open_clip").exists()  # plain-torch models


def test_frozen_draft_cli_reads_compressed_dicom(build_script, frozen_app, tmp_path):
    study = frozen_app / "_internal" / "resources" / "samples" / "study2"
    proc = run_clean(build_script, frozen_app, tmp_path / "home", "draft", str(study), "--device", "cpu",
                     "--json", str(tmp_path / "draft.json"))
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "FINDINGS:" in proc.stdout and (tmp_path / "draft.json").is_file()


def test_frozen_window_shows_a_study(build_script, frozen_app, tmp_path):
    study = frozen_app / "_internal" / "resources" / "samples" / "study1"
    started = time.time()
    proc = run_clean(build_script, frozen_app, tmp_path / "home", str(study), "--benchmark-startup",
                     extra_env={"QT_QPA_PLATFORM": "offscreen", "RRG_DESK_DATA_DIR": str(tmp_path / "data")})
    assert proc.returncode == 0, proc.stderr[-5000:]
    shown = float(proc.stdout.split(SHOWN_MARKER, 1)[1].split()[0])
    assert 0 < shown - started < 120
