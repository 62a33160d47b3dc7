"""Ready when the radiologist is (issue 17): cold start-up figures as RATIOS to the bare
`python -c "import torch, torchvision"` measured in the same run, and the GUI stall while the
models load, measured for the three ways of loading them.

Rows
- warm_start_app_to_first_draft_ratio: `rrg-desk --benchmark-first-draft STUDY` (a fresh data
  folder, auto-draft on), process start to the first draft on screen, over the bare import.
- cli_cold_draft_ratio: `rrg-desk draft STUDY --device cpu`, the whole process, over the bare import.
- cli_import_floor_ratio: importing what the models are built from, over the bare import: the
  least any cold draft can cost. Since issue 17 the models are plain torch (transformers,
  open_clip, timm and then the torchvision package dropped from the draft path; the detector
  loads only torchvision's compiled RoIAlign/NMS kernels), so the floor is `import torch`,
  which skips the torch._dynamo import that `import torchvision` pulls in.
- model_load_gui_stall_{thread,thread_chunked,child_process}: the longest GUI-thread stall of
  the main window (5 ms timer probe) while torch and the bundle load
    thread          in a thread of the GUI process, as the app did before issue 17
    thread_chunked  the same with every module import preceded by a yield, a 0.5 ms GIL
                    switch interval and the imports staged with pauses (lazy, chunked loading)
    child_process   in the inference child (what the app does now)
Each figure is the median of ROUNDS interleaved runs (bare, CLI, app in turn, so the load of
the shared machine hits each alike). Run: .venv/bin/python -m bench bench_warm_start
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import result

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 3
STUDY = ROOT / "resources" / "samples" / "study2"  # one frontal image
CLI_RATIO_TARGET, APP_RATIO_TARGET, STALL_TARGET_MS = 1.2, 1.5, 50.0
FLOOR_IMPORT = "import torch"

_STALL_CHILD = r"""
import json, os, sys, threading, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
mode, bundle, data = sys.argv[1], sys.argv[2], sys.argv[3]
os.environ["RRG_DESK_DATA_DIR"] = data


def staged_load():
    if mode == "thread_chunked":
        import importlib.abc
        class Yield(importlib.abc.MetaPathFinder):  # let the GUI thread run before every module import
            def find_spec(self, name, path=None, target=None):
                time.sleep(0.0005)
                return None
        sys.meta_path.insert(0, Yield())
        sys.setswitchinterval(0.0005)
        for name in ("numpy", "torch", "torchvision", "rrg_desk.models.detector",
                     "rrg_desk.models.clip_classifier", "rrg_desk.models.generator", "rrg_desk.inference.pipeline"):
            __import__(name)
            time.sleep(0.02)
    from rrg_desk.inference.pipeline import DraftPipeline
    DraftPipeline(bundle, "cpu").bundle


def main():
    from PySide6.QtCore import QTimer
    from rrg_desk.app.settings import AppSettings
    from rrg_desk.ui.app import create_application
    from rrg_desk.ui.main_window import MainWindow

    app = create_application()
    window = MainWindow(app_settings=AppSettings(bundle_dir=bundle, device="cpu", auto_draft=False,
                                                 user_name="bench", identity_confirmed=True))
    window.warm_start_enabled = mode == "child_process"
    window.resize(1600, 1000)
    gaps, last = [], [0.0]
    def tick():
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000.0)
        last[0] = now
    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(tick)
    done = []
    window.show()
    for _ in range(50):  # the window settles first
        app.processEvents()
        time.sleep(0.002)
    last[0] = time.perf_counter()
    start = time.perf_counter()
    probe.start()
    if mode == "child_process":
        window.worker.modelsStateChanged.connect(lambda state, text: state in ("ready", "failed") and done.append(state))
        window.warm_models()
    else:
        threading.Thread(target=lambda: (staged_load(), done.append("ready")), daemon=True).start()
    while not done and time.perf_counter() - start < 600:
        app.processEvents()
        time.sleep(0.001)
    ready_s = time.perf_counter() - start
    probe.stop()
    window.close()
    print("STALL " + json.dumps({"state": done[0] if done else "timeout", "ready_s": ready_s,
                                 "stall_ms": max(max(gaps) - 5.0, 0.0), "ticks": len(gaps),
                                 "over_50ms": sum(g - 5.0 > 50.0 for g in gaps)}), flush=True)


if __name__ == "__main__":
    main()
"""


def _bundle() -> tuple[Path, str]:
    from bench.bench_draft import _bundle as draft_bundle

    return draft_bundle()


def _env(**extra: str) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", **extra}
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _wall(argv: list[str], env: dict, marker: str | None = None) -> tuple[float, str]:
    """Seconds from starting the process to its exit (or to the marker line it prints)."""
    start = time.time()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    end = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    if marker is not None:
        line = next(line for line in proc.stdout.splitlines() if line.startswith(marker))
        end = float(line.split()[1])
        return end - start, line
    return end - start, ""


def _stall(mode: str, bundle: Path, tmp: Path) -> dict:
    script = tmp / "stall_probe.py"
    script.write_text(_STALL_CHILD)
    proc = subprocess.run([sys.executable, str(script), mode, str(bundle), str(tmp / f"data-{mode}")], cwd=ROOT,
                          env=_env(PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=900)
    line = next((line for line in proc.stdout.splitlines() if line.startswith("STALL ")), None)
    if line is None:
        raise RuntimeError(f"stall probe {mode} failed: {proc.stderr[-2000:]}")
    return json.loads(line[6:])


def run() -> list[dict]:
    bundle, which = _bundle()
    bare, cli, app, floor, moments = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for round_ in range(ROUNDS):
            bare.append(_wall([sys.executable, "-c", "import torch, torchvision"], _env())[0])
            cli.append(_wall([sys.executable, "-m", "rrg_desk", "draft", str(STUDY), "--bundle", str(bundle),
                              "--device", "cpu"], _env())[0])
            seconds, line = _wall([sys.executable, "-m", "rrg_desk", "--benchmark-first-draft", "--bundle", str(bundle),
                                   str(STUDY)], _env(RRG_DESK_DATA_DIR=str(tmp / f"app-{round_}")),
                                  marker="RRG_DESK_FIRST_DRAFT")
            app.append(seconds)
            moments.append(json.loads(line.split(" ", 2)[2]) | {"end": float(line.split()[1])})
            floor.append(_wall([sys.executable, "-c", FLOOR_IMPORT], _env())[0])
        stalls = {mode: _stall(mode, bundle, tmp) for mode in ("thread", "thread_chunked", "child_process")}
    bare_s, cli_s, app_s, floor_s = (statistics.median(v) for v in (bare, cli, app, floor))
    starts = [m["end"] - a for m, a in zip(moments, app)]  # the process start of each app run
    shown = statistics.median(m["shown"] - s for m, s in zip(moments, starts))
    ready = statistics.median(m.get("models_ready", m["end"]) - s for m, s in zip(moments, starts))
    conditions = ("whole processes, medians of 3 interleaved runs, OMP_NUM_THREADS=1, CPU; seconds depend on "
                  f"what else the machine's {os.cpu_count()} cores run (load average {os.getloadavg()[0]:.1f} at "
                  "the end), the ratios to the bare import of the same run are the figures")
    runs = lambda values: ", ".join(f"{v:.2f}" for v in values)  # noqa: E731
    rows = [
        result("warm_start_app_to_first_draft_ratio", app_s / bare_s, "x", APP_RATIO_TARGET,
               note=f"{which}; process start to the first draft on screen {app_s:.2f} s (runs {runs(app)}) "
                    f"over the bare import {bare_s:.2f} s (runs {runs(bare)}); window shown at {shown:.2f} s, "
                    f"models ready at {ready:.2f} s; {conditions}"),
        result("cli_cold_draft_ratio", cli_s / bare_s, "x", CLI_RATIO_TARGET,
               note=f"{which}; `rrg-desk draft study2 --device cpu` {cli_s:.2f} s (runs {runs(cli)}) over the bare "
                    f"import {bare_s:.2f} s; {conditions}"),
        result("cli_import_floor_ratio", floor_s / bare_s, "x", None,
               note=f"`{FLOOR_IMPORT}` alone {floor_s:.2f} s (runs {runs(floor)}) over the bare import: the "
                    f"libraries the models are built from cost this much before any work; {conditions}"),
    ]
    labels = {"thread": "in a thread of the GUI process (before issue 17)",
              "thread_chunked": "in a thread, every import preceded by a yield, 0.5 ms GIL switch interval, "
                                "imports staged with pauses",
              "child_process": "in the inference child process (the app now)"}
    for mode, data in stalls.items():
        kept = mode == "child_process"  # the others are the measured alternatives: no target of their own
        rows.append(result(f"model_load_gui_stall_{mode}", data["stall_ms"], "ms", STALL_TARGET_MS if kept else None,
                           note=("" if kept else f"not kept: over the {STALL_TARGET_MS:.0f} ms target; ") +
                                f"{which}; longest GUI stall while torch and the bundle load {labels[mode]}; "
                                f"ready after {data['ready_s']:.1f} s; {data['over_50ms']} stalls over 50 ms in "
                                f"{data['ticks']} ticks; one run"))
    return rows
