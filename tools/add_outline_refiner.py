"""A NEW bundle: an existing bundle's models with a trained outline refiner on its detector.

    python -m train refiner --set out_dir=RUNS      # RUNS/detector holds the bundle's detector
    python tools/add_outline_refiner.py resources/models/default RUNS --out NEW_BUNDLE
    python -m train evaluate --bundle NEW_BUNDLE

The refiner does not change the detector's weights, only where its organ boxes end up, so the
classifier, region heads and generator are the parent's as they are. The card keeps the parent's
classification, thresholds and records and adds the refiner's (its config section, validation
curve, the box weight chosen on validation, its initial weights) and the parent's id.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rrg_desk.models.bundle import load_bundle, save_bundle, sha256_file  # noqa: E402
from train.config import load_config  # noqa: E402
from train.export import git_commit  # noqa: E402
from train.tasks.common import run_dir  # noqa: E402
from train.tasks.refiner_task import SELECTION_FILE, attach_trained_refiner, refiner_section  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path, help="the parent bundle (only read)")
    parser.add_argument("runs", type=Path, help="the out_dir whose refiner run to attach")
    parser.add_argument("--config", type=Path, help="YAML merged over train/configs/default.yaml")
    parser.add_argument("--out", type=Path, required=True, help="the new bundle folder")
    args = parser.parse_args(argv)
    config = load_config(args.config, [f"out_dir={args.runs}"])
    folder = run_dir(config, "refiner")
    if refiner_section(config) is None or not (folder / SELECTION_FILE).exists():
        print(f"no trained refiner with a chosen box weight in {folder}", file=sys.stderr)
        return 2
    parent = load_bundle(args.bundle)
    detector = attach_trained_refiner(config, parent.detector.cpu())
    card = parent.card
    training = dict(card.records.training)
    training["config"]["detector"]["refiner"] = refiner_section(config)
    training["validation"]["refiner"] = json.loads((folder / "best.json").read_text()) | {
        "box_weight": json.loads((folder / SELECTION_FILE).read_text())}
    if (folder / "pretrained.json").exists():
        training["initial_weights"]["detector_outline_refiner"] = json.loads((folder / "pretrained.json").read_text())
    training["lineage"] = {
        "added": [f"detector outline refiner (python -m train refiner at commit {git_commit()})"],
        "carried_over": {"detector, region heads, classifier, generator": (
            f"weights, calibration, thresholds and input gate of bundle {card.bundle_id} (card sha256 "
            f"{sha256_file(Path(args.bundle) / 'card.json')}), unchanged")},
        "parent_lineage": training.get("lineage"),
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    raw = json.loads((Path(args.bundle) / "card.json").read_text(encoding="utf-8"))
    carried = ("thresholds", "classification", "region_selection", "preprocessing", "generation", "input_check")
    extra = {key: raw[key] for key in carried if key in raw} | {"training": training, "metrics": card.records.metrics}
    half = tuple(config["export"].get("half_precision", ()))  # as `python -m train export` stores them
    path = save_bundle(args.out, detector=detector, classifier=parent.classifier.cpu(),
                       generator=parent.generator.cpu(), tokenizer=parent.tokenizer, card_extra=extra,
                       half_precision=half)
    print(f"bundle written to {path} (refiner box weight {detector.config.refiner_box_weight})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
