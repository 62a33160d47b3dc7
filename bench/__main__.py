"""Run every bench/bench_*.py (each defines run() -> list[dict]) and record the results."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

from bench.common import RESULTS_FILE, record
from bench.report import write_report


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}", flush=True)
        rows = module.run()
        record(rows)
        for row in rows:
            status = {True: "ok", False: "MISSED", None: ""}[row.get("met")]
            print(f"  {row['name']}: {row['value']} {row['unit']} (target {row.get('target')}) {status}")
    print(f"results in {RESULTS_FILE}; table in {write_report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
