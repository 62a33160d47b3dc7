"""Run folders -> a model bundle the app loads (safetensors + card.json)."""
from __future__ import annotations

import json
import logging
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors.torch import load_file

from rrg_desk.models.bundle import save_bundle
from rrg_desk.thresholds import DEFAULT_THRESHOLD
from train.tasks.clip_task import build_classifier
from train.tasks.common import run_dir, tokenizer_for
from train.tasks.detector_task import trained_detector
from train.tasks.refiner_task import SELECTION_FILE, refiner_section
from train.tasks.generator_task import build_generator

log = logging.getLogger(__name__)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    for name in ("best.safetensors", "last.safetensors"):
        if (folder / name).exists():
            return load_file(str(folder / name))
    raise FileNotFoundError(f"no trained weights in {folder}; run the training step first")


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def trained_models(config: dict, device: str | torch.device = "cpu"):
    """(detector, classifier, generator, tokenizer) with the best weights of each run."""
    tokenizer = tokenizer_for(config)
    detector = trained_detector(config)
    heads_dir = run_dir(config, "region_heads")
    if heads_dir.exists():
        detector.heads.load_state_dict(_strip(_weights(heads_dir), "heads."))
    classifier = build_classifier(config, tokenizer)
    classifier.load_state_dict(_strip(_weights(run_dir(config, "clip")), "classifier."))
    from train.calibration import gate_weights_path

    if gate_weights_path(config).exists():  # fitted after training on frozen features
        classifier.input_gate.load_state_dict(load_file(str(gate_weights_path(config))))
    from train.calibration import load_classification
    from train.feature_probe import load_probe

    probe = load_probe(config, load_classification(config))
    if probe is not None:  # the frozen-ImageNet second opinion calibration kept
        classifier.attach_feature_probe(probe)
    generator = build_generator(config, tokenizer, detector)
    gen_dir = run_dir(config, "generator")
    generator.load_state_dict(_weights(gen_dir if gen_dir.exists() else run_dir(config, "generator_pretrain")))
    return (detector.to(device).eval(), classifier.to(device).eval(), generator.to(device).eval(), tokenizer)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def initial_weights(config: dict, classification: dict) -> dict:
    """Per component, the provenance of the ImageNet weights it started from (absent: random)."""
    probe = classification.get("feature_probe") or {}
    out = {"classifier": classification.get("pretrained"),
           "classifier_feature_probe": probe.get("initial_weights") if probe.get("used") else None}
    for component, name in (("detector", "detector"), ("refiner", "detector_outline_refiner")):
        provenance = run_dir(config, component) / "pretrained.json"
        if provenance.exists() and (component != "refiner" or refiner_section(config)):
            out[name] = json.loads(provenance.read_text())
    return {k: v for k, v in out.items() if v}


def lineage(config: dict) -> dict:
    """{"lineage": ...} when some run folders were unpacked from a bundle (`python -m train unpack`):
    which models this export carries over from it and which its own runs trained."""
    from train.unpack import UNPACKED, carried_over

    carried = carried_over(config)
    if not carried:
        return {}
    trained = ["classifier"] + [c for c in UNPACKED if c not in carried and (run_dir(config, c) / "best.json").exists()]
    return {"lineage": {"retrained": trained, "carried_over": carried}}


def export_bundle(config: dict, out: str | Path | None = None, metrics: dict | None = None) -> Path:
    detector, classifier, generator, tokenizer = trained_models(config)
    out = Path(out or config["export"]["out"])
    summaries = {}
    for component in ("detector", "refiner", "clip", "generator_pretrain", "generator", "region_heads"):
        best = run_dir(config, component) / "best.json"
        if best.exists():
            summaries[component] = json.loads(best.read_text())
    if detector.refiner is not None:  # and how far its boxes follow the refiner, by validation IoU
        summaries["refiner"]["box_weight"] = json.loads((run_dir(config, "refiner") / SELECTION_FILE).read_text())
    else:
        summaries.pop("refiner", None)
    selector = config["export"].get("selector_threshold", DEFAULT_THRESHOLD)
    selection: dict = {}
    if selector == "calibrate":
        from train.tasks.generator_task import calibrate_selector_threshold

        selection = calibrate_selector_threshold(config, detector.heads, tokenizer, detector, torch.device("cpu"))
        selector = selection.pop("threshold")
        log.info("region selector threshold %.3f: %.1f regions per draft on val (reports name %.1f)",
                 selector, selection["mean_selected_on_val"] or 0, selection["target_regions_per_report"])
    from train.calibration import load_classification

    classification = load_classification(config)
    card_extra = {
        "preprocessing": dict(config["preprocessing"]),
        "thresholds": classification.get("thresholds", {}),
        "generation": {"max_len": int(config["generator"]["max_len"]),
                       "beam_size": int(config["export"].get("beam_size", 1)), "image_tokens_from": "detector",
                       "clues": "thresholded"},
        "classification": {"mode": classification["mode"], "calibration": classification.get("calibration", {}),
                           **({"measurements": classification["measurements"]}
                              if classification.get("measurements") else {}),
                           **({"probe_weight": classification["probe_weight"]}
                              if classification.get("probe_weight") else {}),
                           **({"abnormality_weight": classification["abnormality_weight"]}
                              if classification.get("abnormality_weight") else {})},
        "region_selection": {"threshold": float(selector), **selection},
        "training": {"data": config["data"], "config": config, "commit": git_commit(),
                     "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "validation": summaries, "classifier_selection": classification.get("validation", {}),
                     "feature_probe": classification.get("feature_probe"),
                     "input_gate": classification.get("input_gate"),
                     "initial_weights": initial_weights(config, classification),
                     **lineage(config)},
        "metrics": metrics or {},
    }
    if "input_gate" in classification:  # the learned half of the input check (else rules only)
        gate = classification["input_gate"]
        card_extra["input_check"] = {"p_chest_threshold": gate["chest_threshold"],
                                     "p_lateral_threshold": gate["lateral_threshold"]}
    path = save_bundle(out, detector=detector, classifier=classifier, generator=generator, tokenizer=tokenizer,
                       card_extra=card_extra, half_precision=tuple(config["export"].get("half_precision", ())))
    log.info("exported bundle to %s", path)
    return path
