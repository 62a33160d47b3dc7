"""Draft latency per stage on the CPU for 1- and 2-view studies, and peak RSS.

Runs in a fresh subprocess so the RSS is the pipeline's alone. Uses the shipped default
bundle when present, else a random bundle of the default size (same cost, no quality).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import result

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, resource, statistics, sys, time
from pathlib import Path
import torch
torch.set_num_threads(2)
from rrg_desk.imaging import load_studies
from rrg_desk.inference.pipeline import DraftPipeline
from bench.common import percentile
bundle, sample = sys.argv[1], sys.argv[2]
studies, _ = load_studies([Path(sample)])
study = studies[0]
one_view = type(study)(study_uid=study.study_uid, images=study.images[:1])
pipeline = DraftPipeline(bundle, device="cpu")
out = {"load_ms": None}
t0 = time.perf_counter(); pipeline.bundle; out["load_ms"] = (time.perf_counter() - t0) * 1000
for name, s in (("2view", study), ("1view", one_view)):
    for _ in range(2):
        pipeline.draft(s)
    totals, stages = [], {}
    for _ in range(int(sys.argv[3])):
        d = pipeline.draft(s)
        totals.append(d.timings_ms["total"])
        for k, v in d.timings_ms.items():
            stages.setdefault(k, []).append(v)
    out[name] = {"p50": statistics.median(totals), "p95": percentile(totals, 0.95),
                 "stages_p50": {k: statistics.median(v) for k, v in stages.items()},
                 "sentences": len(d.sentences)}
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("BENCH " + json.dumps(out))
"""


def _bundle() -> tuple[Path, str]:
    default = ROOT / "resources" / "models" / "default"
    if (default / "card.json").exists():
        return default, "default bundle"
    from rrg_desk.models.bundle import build_random_bundle

    folder = Path(tempfile.mkdtemp()) / "random-default"
    build_random_bundle(folder, size="default")
    return folder, "random bundle of the default size"


def run(repeats: int = 15) -> list[dict]:
    bundle, which = _bundle()
    sample = ROOT / "resources" / "samples" / "study1"  # two images
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(bundle), str(sample), str(repeats)], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"draft benchmark failed: {proc.stderr[-2000:]}")
    data = json.loads(line[6:])
    two, one = data["2view"], data["1view"]
    note = f"{which}; stages p50 ms (2 views): " + ", ".join(f"{k} {v:.0f}" for k, v in two["stages_p50"].items())
    return [
        result("draft_2view_p50", two["p50"], "ms", 1000.0, note=note),
        result("draft_2view_p95", two["p95"], "ms", 1500.0, note=which),
        result("draft_1view_p50", one["p50"], "ms", None, note=which),
        result("draft_peak_rss", data["peak_rss_mb"], "MB", 1536.0, note=which),
        result("bundle_load", data["load_ms"], "ms", None, note=which),
    ]
