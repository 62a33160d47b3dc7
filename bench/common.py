"""Shared method for every benchmark: warm-up, repeats, median and p95, results to JSON."""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Callable

RESULTS_FILE = Path(__file__).resolve().parent / "results.json"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def time_repeated(fn: Callable[[], object], repeats: int = 20, warmup: int = 3) -> dict[str, float]:
    """Run fn warmup+repeats times; return median/p95/min in milliseconds."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return {"p50_ms": statistics.median(samples), "p95_ms": percentile(samples, 0.95),
            "min_ms": min(samples), "runs": len(samples)}


def result(name: str, value: float, unit: str, target: float | None, lower_is_better: bool = True,
           **extra) -> dict:
    met = None
    if target is not None:
        met = value <= target if lower_is_better else value >= target
    return {"name": name, "value": round(float(value), 3), "unit": unit, "target": target,
            "met": met, **extra}


def record(results: list[dict], path: Path = RESULTS_FILE) -> None:
    """Merge results into bench/results.json keyed by name (other benchmarks' rows are kept)."""
    existing = {}
    if path.exists():
        try:
            existing = {row["name"]: row for row in json.loads(path.read_text())["results"]}
        except (ValueError, KeyError):
            existing = {}
    for row in results:
        existing[row["name"]] = row
    payload = {"updated": time.strftime("%Y-%m-%dT%H:%M:%S"), "results": list(existing.values())}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(path)
