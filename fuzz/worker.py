"""The worker process: runs fuzz cases one by one under an address-space limit.

Protocol (JSON lines): the parent writes {"target", "index"}; the worker answers
{"phase": "start", ...} before running the case and {"phase": "done", ...} after, so the
parent can time the case and knows which case was running if the worker dies.
Library output to stdout is redirected to stderr; the protocol has its own descriptor.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path

from fuzz.cases import Corpus, execute, make_case, materialise


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    """Linux >= 4.0: writing 5 to clear_refs resets VmHWM, so each case has its own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _limit_memory(budget_mb: int) -> int:
    """Allow `budget_mb` of address space beyond what the imports already mapped."""
    limit = _status_kb("VmSize") * 1024 + budget_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return limit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-mb", type=int, default=2048)
    args = parser.parse_args(argv)

    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from libraries must not corrupt the protocol

    import torch  # imported before the limit, so the limit is on the cases' own memory

    torch.set_num_threads(1)
    from rrg_desk.imaging import read_image  # noqa: F401
    from rrg_desk.models.bundle import COMPONENTS, component_classes

    for component in COMPONENTS:
        component_classes(component)  # import the model modules now, before the memory limit
    corpus = Corpus.build(args.workdir)
    case_dir = args.workdir / f"worker-{os.getpid()}"
    case_dir.mkdir(parents=True, exist_ok=True)
    limit = _limit_memory(args.memory_mb)
    protocol.write(json.dumps({"phase": "ready", "rss_mb": _status_kb("VmRSS") / 1024,
                               "address_limit_mb": limit / 2**20}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        case = make_case(corpus, request["target"], args.seed, int(request["index"]))
        path = materialise(case, corpus, case_dir)
        protocol.write(json.dumps({"phase": "start", "kind": case.kind, "seed_name": case.seed_name}) + "\n")
        per_case_peak = _reset_peak_rss()
        before = _status_kb("VmRSS")
        verdict = execute(case, path)
        peak = _status_kb("VmHWM")
        verdict.update(phase="done", kind=case.kind, seed_name=case.seed_name, peak_rss_mb=peak / 1024,
                       case_rss_mb=(peak - before) / 1024 if per_case_peak else None)
        protocol.write(json.dumps(verdict) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
