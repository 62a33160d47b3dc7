"""False-refusal rate of the input check on the real chest radiographs in ../shared/data.

    .venv/bin/python tools/input_check_rates.py [--data ../shared/data] [--bundle DIR] [--json OUT] [--show N]

Every image of every set is read as the app reads it and checked with
rrg_desk.imaging.input_check.check_image: the rules only, or with --bundle the rules plus that
bundle's learned score (chest radiograph? lateral view?), exactly as drafting runs it. Every
image there is a real chest radiograph, so every refusal is a false refusal. Prints one row
per set (covid_cxr's laterals also on their own row, with how many the check calls lateral)
and the refused files with their reasons. With --bundle it also checks the held-out half of
the non-radiographs the gate was fitted against (train/input_gate.py), where every image
should be refused.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rrg_desk.imaging import ImageReadError, read_image  # noqa: E402
from rrg_desk.imaging.input_check import check_image  # noqa: E402

SETS = ("jsrt_scr", "nih_cxr14", "tb_cxr", "covid_cxr", "cxr_report_pairs")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm"}
_LATERAL_LABELS = {"L", "LATERAL", "LL", "RL"}


def set_images(folder: Path) -> list[Path]:
    """The radiographs of one set: everything under images/ (masks live elsewhere)."""
    return sorted(p for p in (folder / "images").rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)


def covid_laterals(folder: Path) -> set[Path]:
    annotation = json.loads((folder / "annotation.json").read_text())
    return {(folder / "images" / entry["image_path"][0]).resolve()
            for split in annotation.values() for entry in split
            if str(entry.get("view", "")).strip().upper() in _LATERAL_LABELS}


def check_set(paths: list[Path], scorer=None, thresholds=None) -> dict:
    refused, unreadable, stats, lateral = [], [], [], set()
    for path in paths:
        try:
            image = read_image(path)
        except ImageReadError as exc:
            unreadable.append({"path": str(path), "reason": exc.user_message})
            continue
        result = check_image(image, scorer, thresholds)
        stats.append(result.measurements)
        if result.view.value == "LATERAL":
            lateral.add(path.resolve())
        if not result.passed:
            refused.append({"path": str(path), "reason": result.user_message,
                            "rule": type(result.refusals[0]).__name__})
    return {"images": len(paths), "refused": refused, "unreadable": unreadable, "stats": stats, "lateral": lateral}


def _summary(name: str, outcome: dict) -> dict:
    checked = outcome["images"] - len(outcome["unreadable"])
    stats = outcome["stats"]
    lowest = {key: round(float(np.min([s[key] for s in stats if key in s])), 4)
              for key in ("contrast_std", "grey_levels", "neighbour_correlation") if stats}
    highest_single = round(float(np.max([s["single_value_fraction"] for s in stats if "single_value_fraction" in s])),
                           4) if stats else None
    aspects = [max(s["width"], s["height"]) / min(s["width"], s["height"]) for s in stats]
    return {"set": name, "images": outcome["images"], "unreadable": len(outcome["unreadable"]),
            "refused": len(outcome["refused"]),
            "false_refusal_rate": len(outcome["refused"]) / checked if checked else None,
            "by_rule": dict(Counter(r["rule"] for r in outcome["refused"])),
            "min_short_side": int(min(min(s["width"], s["height"]) for s in stats)) if stats else None,
            "max_aspect": round(max(aspects), 3) if aspects else None,
            "lowest": lowest, "highest_single_value_fraction": highest_single}


def learned_check(bundle: Path):
    from rrg_desk.inference.pipeline import DraftPipeline

    return DraftPipeline(bundle, device="cpu")._learned_input_check()


def negatives_row(scorer, thresholds) -> dict:
    """The held-out half of the gate's packaged non-radiographs, each refused or not."""
    from train.input_gate import held_out, packaged_negative_files

    files = [p for p in packaged_negative_files() if held_out(p)]
    refused, passed = 0, []
    for path in files:
        try:
            result = check_image(read_image(path), scorer, thresholds)
        except ImageReadError:
            refused += 1  # the reader refuses it already
            continue
        refused += not result.passed
        if result.passed:
            passed.append(path.name)
    return {"set": "non-radiographs (held out)", "images": len(files), "negatives_refused": refused,
            "passed_files": passed, "refused": refused, "false_refusal_rate": None, "by_rule": {}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--json", dest="json_out", type=Path, help="write the per-set figures here")
    parser.add_argument("--show", type=int, default=20, help="list at most this many refused files per set")
    parser.add_argument("--bundle", type=Path, help="add this bundle's learned score to the rules")
    args = parser.parse_args(argv)
    scorer, thresholds = learned_check(args.bundle) if args.bundle else (None, None)
    rows, refused_files = [], {}
    for name in SETS:
        folder = args.data / name
        if not folder.is_dir():
            print(f"{name}: missing, skipped")
            continue
        paths = set_images(folder)
        start = time.perf_counter()
        outcome = check_set(paths, scorer, thresholds)
        rows.append(_summary(name, outcome) | {"seconds": round(time.perf_counter() - start, 1)})
        refused_files[name] = outcome["refused"] + outcome["unreadable"]
        if name == "covid_cxr":
            laterals = covid_laterals(folder)
            lateral_outcome = {**outcome, "images": len(laterals),
                               "refused": [r for r in outcome["refused"] if Path(r["path"]).resolve() in laterals],
                               "unreadable": [r for r in outcome["unreadable"]
                                              if Path(r["path"]).resolve() in laterals],
                               "stats": []}
            rows.append(_summary("covid_cxr (laterals)", lateral_outcome)
                        | {"called_lateral": len(outcome["lateral"] & laterals),
                           "frontal_called_lateral": len(outcome["lateral"] - laterals)})
    if scorer is not None:
        rows.append(negatives_row(scorer, thresholds))
    print(f"{'set':24} {'images':>6} {'refused':>7} {'rate':>7}  by rule")
    for row in rows:
        rate = "n/a" if row["false_refusal_rate"] is None else f"{row['false_refusal_rate']:.2%}"
        print(f"{row['set']:24} {row['images']:>6} {row['refused']:>7} {rate:>7}  {row['by_rule'] or ''}")
    for row in rows:
        if "called_lateral" in row:
            print(f"  covid_cxr: {row['called_lateral']} of {row['images']} laterals called lateral, "
                  f"{row['frontal_called_lateral']} frontal images called lateral")
        if "negatives_refused" in row:
            print(f"  held-out non-radiographs: {row['negatives_refused']} of {row['images']} refused "
                  f"({row['negatives_refused'] / max(1, row['images']):.1%}); passed: {row['passed_files']}")
    for row in rows:
        if row.get("lowest"):
            print(f"  {row['set']}: shortest side >= {row['min_short_side']} px, aspect <= {row['max_aspect']}, "
                  f"lowest {row['lowest']}, one-value fraction <= {row['highest_single_value_fraction']}")
    for name, files in refused_files.items():
        for item in files[: args.show]:
            print(f"  {name}: {item['reason']}")
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
