"""Viewer speed: open + display a 2048x2048 16-bit DICOM; app start to a shown study.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python -m bench bench_viewer
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import result, time_repeated

ROOT = Path(__file__).resolve().parent.parent
BIG_SIZE = 2048
STARTUP_RUNS = 5


def _big_study(folder: Path) -> Path:
    from tests.ui.dicom_factory import write_test_study

    write_test_study(folder, rows=BIG_SIZE, cols=BIG_SIZE)
    return folder


def _bench_open_and_display(folder: Path) -> list[dict]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from rrg_desk.imaging import Window, read_image
    from rrg_desk.ui.image_view import ImageView

    app = QApplication.instance() or QApplication([])
    view = ImageView()
    view.resize(900, 900)
    view.show()
    app.processEvents()
    path = folder / "pa.dcm"

    def open_and_display() -> None:
        view.set_image(read_image(path))
        app.processEvents()

    open_stats = time_repeated(open_and_display, repeats=10, warmup=2)
    flip = [Window(1000.0, 2000.0), Window(2000.0, 3000.0)]
    counter = iter(range(10**9))

    def rewindow() -> None:  # one step of a right-drag on a 2048x2048 image
        view.set_display_window(flip[next(counter) % 2])
        app.processEvents()

    window_stats = time_repeated(rewindow, repeats=20, warmup=3)
    view.close()
    return [
        result("viewer_open_display_2048_dicom_p50", open_stats["p50_ms"], "ms", 150.0,
               p95_ms=round(open_stats["p95_ms"], 1), runs=open_stats["runs"]),
        result("viewer_rewindow_2048_p50", window_stats["p50_ms"], "ms", 50.0,
               p95_ms=round(window_stats["p95_ms"], 1), runs=window_stats["runs"]),
    ]


def _bench_startup(study: Path) -> list[dict]:
    """Wall clock from launching `python -m rrg_desk STUDY` to the study shown on screen."""
    from rrg_desk.ui.app import SHOWN_MARKER

    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    samples = []
    with tempfile.TemporaryDirectory() as data_dir:
        env["RRG_DESK_DATA_DIR"] = data_dir  # keep the user's recent-files list untouched
        for _ in range(STARTUP_RUNS):
            launched = time.time()
            proc = subprocess.run([sys.executable, "-m", "rrg_desk", str(study), "--benchmark-startup"],
                                  cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            lines = [line for line in proc.stdout.splitlines() if line.startswith(SHOWN_MARKER)]
            if proc.returncode != 0 or not lines:
                raise RuntimeError(f"startup run failed ({proc.returncode}): {proc.stderr[-2000:]}")
            samples.append((float(lines[-1].split()[1]) - launched) * 1000.0)
    return [result("viewer_startup_to_shown_study_p50", statistics.median(samples), "ms", 2500.0,
                   min_ms=round(min(samples), 1), max_ms=round(max(samples), 1), runs=len(samples),
                   study=str(study))]


def run() -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = _big_study(Path(tmp) / "big")
        rows = _bench_open_and_display(folder)
        sample = ROOT / "resources" / "samples" / "study1"
        rows += _bench_startup(sample if sample.is_dir() else folder)
    return rows
