"""Workstation responsiveness: the GUI event loop's longest stall during a CPU draft (a 5 ms
QTimer probe), the memory of the running app with the bundle loaded, and the peak memory
(ru_maxrss) of the full offscreen flow: open, two drafts, accept, sign, export every format
(TXT, PDF, JSON, FHIR, DICOM SR, PNG) plain and anonymised.

Uses resources/models/default when it exists, else a random "default"-size bundle (same
architecture and size, untrained). The first ("cold") draft also imports torch and loads the
models in the worker thread; the second ("warm") draft is the everyday case.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python -m bench bench_workstation
"""
from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

from bench.common import result

ROOT = Path(__file__).resolve().parent.parent
PROBE_MS = 5
STALL_TARGET_MS = 50.0
RSS_TARGET_MB = 1536.0


class StallProbe:
    """A QTimer ticking every PROBE_MS; the longest gap between ticks, minus the period, is the stall."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.longest = 0.0
        self.ticks = 0

    def start(self) -> None:
        self.last, self.longest, self.ticks = time.perf_counter(), 0.0, 0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return max(self.longest - PROBE_MS, 0.0)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, (now - self.last) * 1000.0)
        self.last = now
        self.ticks += 1


def _bundle(folder: Path) -> tuple[Path, str]:
    default = ROOT / "resources" / "models" / "default"
    if (default / "card.json").exists():
        return default, "default bundle"
    from rrg_desk.models.bundle import build_random_bundle

    return build_random_bundle(folder / "random-default", size="default"), "random default-size bundle"


def _draft_and_probe(app, window, probe: StallProbe, timeout_s: float = 600.0) -> tuple[float, float]:
    done = []
    window.reporting.draftApplied.connect(lambda draft: done.append(draft))
    window.reporting.draftFailed.connect(lambda text: done.append(RuntimeError(text)))
    probe.start()
    start = time.perf_counter()
    window.reporting.request_draft()
    while not done and time.perf_counter() - start < timeout_s:
        app.processEvents()
        time.sleep(0.001)
    elapsed = (time.perf_counter() - start) * 1000.0
    stall = probe.stop()
    window.reporting.draftApplied.disconnect()
    window.reporting.draftFailed.disconnect()
    if not done or isinstance(done[0], Exception):
        raise RuntimeError(f"draft failed or timed out: {done}")
    return stall, elapsed


def run() -> list[dict]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import psutil

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ["RRG_DESK_DATA_DIR"] = str(tmp_path / "data")
        bundle, bundle_kind = _bundle(tmp_path)
        from PySide6.QtWidgets import QApplication

        from rrg_desk.app.settings import AppSettings
        from rrg_desk.paths import samples_dir
        from rrg_desk.ui.main_window import MainWindow

        app = QApplication.instance() or QApplication([])
        window = MainWindow(app_settings=AppSettings(bundle_dir=str(bundle), device="cpu", auto_draft=False,
                                                     user_name="Dr Bench", identity_confirmed=True))
        window.resize(1600, 1000)
        window.show()
        opened = []
        window.studyShown.connect(opened.append)
        window.open_paths([samples_dir() / "study1"])
        while not opened:
            app.processEvents()
            time.sleep(0.005)
        probe = StallProbe()
        cold_stall, cold_ms = _draft_and_probe(app, window, probe)
        warm_stall, warm_ms = _draft_and_probe(app, window, probe)
        rss_mb = psutil.Process().memory_info().rss / 2**20
        exported = _sign_and_export(window, tmp_path / "exports")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
        window.close()
    return [
        result("workstation_gui_stall_warm_draft_cpu", warm_stall, "ms", STALL_TARGET_MS,
               draft_ms=round(warm_ms), bundle=bundle_kind),
        result("workstation_gui_stall_cold_draft_cpu", cold_stall, "ms", STALL_TARGET_MS,
               draft_ms=round(cold_ms), bundle=bundle_kind,
               note="first draft: torch import and model loading in the worker thread"),
        result("workstation_rss_with_bundle", rss_mb, "MB", RSS_TARGET_MB, bundle=bundle_kind),
        result("workstation_peak_rss_full_flow", peak_mb, "MB", RSS_TARGET_MB, bundle=bundle_kind,
               note=f"open, 2 drafts, sign, export {' '.join(exported)} plain and anonymised; ru_maxrss"),
    ]


EVERY_FORMAT = ["txt", "pdf", "json", "fhir", "sr", "png"]


def _sign_and_export(window, folder: Path) -> list[str]:
    session = window.session
    session.accept_all()
    session.sign(reviewed_flags=session.check_before_sign())
    window.reporting.show_report()
    folder.mkdir(parents=True, exist_ok=True)
    written = window.signoff.export(EVERY_FORMAT, folder, anonymise=False, key_image=True)
    anonymous = window.signoff.export(EVERY_FORMAT, folder, anonymise=True, key_image=True)
    if set(written) != set(EVERY_FORMAT) or set(anonymous) != set(EVERY_FORMAT):
        raise RuntimeError(f"export incomplete: {sorted(written)} / {sorted(anonymous)}")
    return sorted(written)
