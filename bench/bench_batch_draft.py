"""Batch drafting (`rrg-desk draft --each DIR --jsonl OUT`): the per-image cost once the models
are loaded, and the whole run's wall time, on 20 single-image studies (the sample DICOMs, copied).

Runs the real command in a fresh subprocess on the CPU and reads its summary line.
Run: .venv/bin/python -m bench bench_batch_draft
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_draft import _bundle
from bench.common import result

ROOT = Path(__file__).resolve().parent.parent
IMAGES = 20
_SUMMARY = re.compile(r"drafted (\d+) of (\d+) images .* in ([\d.]+) s, ([\d.]+) s per image after the first")


def _worklist(folder: Path, count: int = IMAGES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    samples = sorted((ROOT / "resources" / "samples").glob("study*/*.dcm"))
    for i in range(count):
        shutil.copy(samples[i % len(samples)], folder / f"{i:03d}.dcm")
    return folder


def run() -> list[dict]:
    bundle, which = _bundle()
    with tempfile.TemporaryDirectory() as tmp:
        worklist, out = _worklist(Path(tmp) / "worklist"), Path(tmp) / "drafts.jsonl"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "rrg_desk", "draft", "--each", str(worklist),
                               "--jsonl", str(out), "--bundle", str(bundle), "--device", "cpu"],
                              cwd=ROOT, capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - start
        match = _SUMMARY.search(proc.stdout)
        if proc.returncode != 0 or match is None:
            raise RuntimeError(f"batch draft benchmark failed ({proc.returncode}): {proc.stderr[-2000:]}")
        drafted = sum(1 for line in out.read_text().splitlines() if "error" not in json.loads(line))
    note = (f"{which}; {drafted} of {IMAGES} one-image studies (sample DICOMs), CPU, no finding Grad-CAMs; "
            "read from the 10 ms-resolution summary line")
    return [
        result("batch_draft_per_image_after_first", float(match.group(4)) * 1000.0, "ms", None, note=note),
        result("batch_draft_20_images_wall", wall, "s", None,
               note=f"{which}; the whole command: start-up, model load, 20 drafts, JSONL"),
    ]
