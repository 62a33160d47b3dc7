"""The parent side of a fuzz campaign: feeds cases to a worker process, enforces the per-case
time bound (the worker is killed and restarted), notices worker deaths, keeps the failing
inputs, and summarises per target.

    run_campaign(cases_per_target, targets, seed, workdir, time_limit_s, memory_mb) -> dict
"""
from __future__ import annotations

import json
import logging
import os
import select
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from fuzz.cases import PASSING, Corpus, make_case

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
FAILURES_DIR = Path(__file__).resolve().parent / "failures"
_STARTUP_TIMEOUT_S = 300.0
_GENERATION_TIMEOUT_S = 60.0


class _Worker:
    def __init__(self, workdir: Path, seed: int, memory_mb: int) -> None:
        self.stderr = open(workdir / "worker-stderr.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fuzz.worker", "--workdir", str(workdir), "--seed", str(seed),
             "--memory-mb", str(memory_mb)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, bufsize=1)
        self._buffer = b""
        self.eof = False
        self.ready = self.read(_STARTUP_TIMEOUT_S)
        if self.ready is None or self.ready.get("phase") != "ready":
            self.stop()
            raise RuntimeError(f"fuzz worker did not start (see {workdir / 'worker-stderr.log'})")

    def read(self, timeout: float) -> dict | None:
        """The next protocol line, or None on timeout / worker exit. Reads the descriptor
        itself: a buffered readline could swallow two lines while select sees one."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                self.eof = True
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def send(self, request: dict) -> None:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.kill()  # our own child, by its handle
        code = self.proc.wait(timeout=30)
        self.stderr.close()
        return code


def _run_one(worker: _Worker, target: str, index: int, time_limit_s: float) -> tuple[dict, bool]:
    """(verdict, worker_still_usable)."""
    try:
        worker.send({"target": target, "index": index})
    except (BrokenPipeError, OSError):
        return {"outcome": "worker_died", "error": "worker gone before the case"}, False
    start_message = worker.read(_GENERATION_TIMEOUT_S)
    if start_message is None:
        return {"outcome": "worker_died", "error": f"exit code {worker.proc.poll()} while preparing"}, False
    started = time.perf_counter()
    done = worker.read(time_limit_s)
    if done is None:
        elapsed = time.perf_counter() - started
        if not worker.eof:
            return {"outcome": "timeout", "kind": start_message["kind"], "seed_name": start_message["seed_name"],
                    "seconds": elapsed, "error": f"no result within {time_limit_s} s"}, False
        return {"outcome": "worker_died", "kind": start_message["kind"], "seed_name": start_message["seed_name"],
                "seconds": elapsed, "error": f"worker exit code {worker.proc.wait(timeout=30)}"}, False
    return done, True


def _keep_failure(corpus: Corpus, target: str, seed: int, index: int, verdict: dict) -> Path:
    """Save the input (regenerated deterministically) and the verdict for reproduction."""
    case = make_case(corpus, target, seed, index)
    folder = FAILURES_DIR / f"{target}-{seed}-{index}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    files = case.payload if isinstance(case.payload, dict) else {"input.bin": case.payload}
    for name, data in files.items():
        (folder / (name or "unnamed")).write_bytes(data)
    (folder / "verdict.json").write_text(json.dumps(verdict, indent=1))
    return folder


def _summarise(target: str, verdicts: list[dict], failures: list[dict]) -> dict:
    seconds = [v["seconds"] for v in verdicts if isinstance(v.get("seconds"), (int, float))]
    peaks = [v["peak_rss_mb"] for v in verdicts if v.get("peak_rss_mb") is not None]
    extra = [v["case_rss_mb"] for v in verdicts if v.get("case_rss_mb") is not None]
    kinds = Counter(v.get("kind", "?").split(":")[0] for v in verdicts)
    return {
        "target": target, "cases": len(verdicts),
        "outcomes": dict(Counter(v["outcome"] for v in verdicts)),
        "errors": dict(Counter(v.get("error", "") for v in verdicts if v["outcome"] in ("typed_error", "refused"))),
        "mutations": dict(sorted(kinds.items())),
        "failures": len(failures), "failure_examples": failures[:25],
        "max_case_seconds": max(seconds, default=0.0),
        "p50_case_ms": statistics.median(seconds) * 1000 if seconds else 0.0,
        "p99_case_ms": sorted(seconds)[int(0.99 * (len(seconds) - 1))] * 1000 if seconds else 0.0,
        "peak_worker_rss_mb": max(peaks, default=0.0),
        "max_case_rss_growth_mb": max(extra, default=0.0),
    }


def run_campaign(cases_per_target: dict[str, int], seed: int, workdir: Path, time_limit_s: float = 10.0,
                 memory_mb: int = 2048, keep_failures: bool = True, progress: bool = False) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    corpus = Corpus.build(workdir)  # builds the seed bundle once, before any worker starts
    started = time.time()
    summaries, restarts, baseline = [], 0, None
    worker = _Worker(workdir, seed, memory_mb)
    baseline = worker.ready
    try:
        for target, count in cases_per_target.items():
            verdicts, failures = [], []
            for index in range(count):
                verdict, usable = _run_one(worker, target, index, time_limit_s)
                verdicts.append(verdict)
                if verdict["outcome"] not in PASSING:
                    failure = {"index": index, **{k: verdict.get(k) for k in ("outcome", "kind", "seed_name",
                                                                                "error", "seconds")}}
                    if keep_failures:
                        failure["saved"] = str(_keep_failure(corpus, target, seed, index, verdict).relative_to(ROOT))
                    failures.append(failure)
                if not usable:
                    worker.stop()
                    restarts += 1
                    worker = _Worker(workdir, seed, memory_mb)
                if progress and (index + 1) % 500 == 0:
                    print(f"  {target}: {index + 1}/{count} cases, {len(failures)} failures", flush=True)
            summaries.append(_summarise(target, verdicts, failures))
    finally:
        worker.stop()
    return {
        "seed": seed, "time_limit_s": time_limit_s, "memory_budget_mb": memory_mb,
        "worker_baseline_rss_mb": round(baseline["rss_mb"], 1), "address_limit_mb": round(baseline["address_limit_mb"]),
        "worker_restarts": restarts, "wall_seconds": round(time.time() - started, 1),
        "cases": sum(s["cases"] for s in summaries), "failures": sum(s["failures"] for s in summaries),
        "targets": summaries, "platform": {"python": sys.version.split()[0], "cpus": os.cpu_count()},
    }
