"""A bundle back into run folders, so one model can be retrained and the others carried over.

    python -m train unpack --bundle resources/models/default --set out_dir=runs/cls
    python -m train clip --set out_dir=runs/cls        # retrain (and calibrate) the classifier only
    python -m train export --set out_dir=runs/cls --bundle NEW

Each unpacked folder holds the bundle's weights as `best.safetensors` (float32), its validation
summary from the card as `best.json`, and `unpacked_from.json` naming the bundle, so the export
records those models as carried over (the card's `training.lineage`), not as trained by this run.
The classifier is not unpacked: it is the model this is for.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from rrg_desk.models.bundle import sha256_file, verify_bundle
from rrg_desk.models.card import CARD_FILE
from train.tasks.common import run_dir

MARKER = "unpacked_from.json"
UNPACKED = ("detector", "refiner", "region_heads", "generator")


def _write_run(folder: Path, weights: dict[str, torch.Tensor], best: dict | None, origin: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.float().contiguous() for k, v in weights.items()}, str(folder / "best.safetensors"))
    (folder / "best.json").write_text(json.dumps(best or {}, indent=1), encoding="utf-8")
    origin = origin | {"weights_sha256": sha256_file(folder / "best.safetensors")}
    (folder / MARKER).write_text(json.dumps(origin, indent=1), encoding="utf-8")


def unpack_bundle(bundle: str | Path, config: dict) -> list[str]:
    """Write the bundle's detector (with its outline refiner), region heads, generator and
    tokenizer into the config's run folders; returns the components written. The bundle is
    checked first as the app checks it (card checksum, every file's sha256)."""
    bundle = Path(bundle)
    card = verify_bundle(bundle)
    training = card.records.training or {}
    validation, initial = training.get("validation", {}), training.get("initial_weights", {})
    origin = {"bundle_id": card.bundle_id, "card_sha256": sha256_file(bundle / CARD_FILE)}
    detector = load_file(str(bundle / card.components["detector"].file))
    parts = {"detector": {k: v for k, v in detector.items() if not k.startswith("refiner.")},
             "region_heads": {k: v for k, v in detector.items() if k.startswith("heads.")},
             "generator": load_file(str(bundle / card.components["generator"].file))}
    refiner = {k[len("refiner."):]: v for k, v in detector.items() if k.startswith("refiner.")}
    if refiner:
        parts["refiner"] = refiner
    for component, weights in parts.items():
        best = {k: v for k, v in (validation.get(component) or {}).items() if k != "box_weight"}
        _write_run(run_dir(config, component), weights, best, origin | {"component": component})
    if refiner:  # the weight its boxes follow the outlines with, and the validation that chose it
        choice = ((validation.get("refiner") or {}).get("box_weight")
                  or {"box_weight": card.components["detector"].config["refiner_box_weight"]})
        (run_dir(config, "refiner") / "box_weight.json").write_text(json.dumps(choice, indent=1), encoding="utf-8")
    for component, key in (("detector", "detector"), ("refiner", "detector_outline_refiner")):
        if component in parts and initial.get(key):
            (run_dir(config, component) / "pretrained.json").write_text(json.dumps(initial[key], indent=1))
    (Path(config["out_dir"]) / "tokenizer.json").write_bytes((bundle / card.tokenizer.file).read_bytes())
    return list(parts)


def carried_over(config: dict) -> dict[str, str]:
    """component -> "weights of bundle X (card sha256 Y)" for the run folders `unpack_bundle` wrote
    and no training step has overwritten since."""
    out = {}
    for component in UNPACKED:
        folder = run_dir(config, component)
        if (folder / MARKER).exists():
            origin = json.loads((folder / MARKER).read_text(encoding="utf-8"))
            if sha256_file(folder / "best.safetensors") != origin["weights_sha256"]:
                continue  # retrained in place
            out[component] = f"weights of bundle {origin['bundle_id']} (card sha256 {origin['card_sha256']}), unchanged"
    return out
