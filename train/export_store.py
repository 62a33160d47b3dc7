"""`python -m train export-store --db PATH --out DIR [--deidentify] [--since YYYY-MM-DD]`

The export itself belongs to the store (rrg_desk/store/export.py, which the app also calls);
this is the command around it: arguments registered in train/cli.py, a summary printed.
"""
from __future__ import annotations

import sys

from rrg_desk.paths import user_data_dir
from rrg_desk.store import DATABASE_FILE_NAME, StoreError
from rrg_desk.store.export import export_store


def main_export_store(args) -> int:
    db = args.db or user_data_dir() / DATABASE_FILE_NAME
    try:
        summary = export_store(db, args.out, deidentify=args.deidentify, since=args.since)
    except StoreError as exc:
        print(f"python -m train export-store: {exc.user_message}", file=sys.stderr)
        return 2
    print("\n".join(summary.lines()))
    return 0
