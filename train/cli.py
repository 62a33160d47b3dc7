"""`python -m train SUBCOMMAND --config FILE.yaml`: train, evaluate and export model bundles.

Every subcommand runs on one CPU, one GPU or many GPUs (torchrun --nproc_per_node=N).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

SUBCOMMANDS = {
    "regions": "derive region boxes for every JSRT image from the SCR organ masks (writes regions.json)",
    "detector": "train the Faster R-CNN region detector on JSRT region boxes",
    "refiner": "train the detector's outline refiner (a closer look at each organ) and choose on validation "
               "how far the trained detector's boxes follow it (run by `detector` when the config has one)",
    "clip": "train the finding classifier (ImageNet EfficientNet-Lite start, finding head on the labelled "
            "images + CLIP image-text alignment); then choose its mode, calibrate it and set thresholds on "
            "validation, and fit its input gate (chest radiograph? lateral?)",
    "generator": "stage 1: language-model pre-training on report text; then the region selector/"
                 "abnormality heads and stage 2: image-conditioned sentences with region features "
                 "and disease clues (needs detector and clip)",
    "evaluate": "evaluate a bundle: NLG (BLEU, METEOR, ROUGE-L, CIDEr) and clinical efficacy beside the "
                "most-frequent-report and nearest-neighbour baselines; classifier AUC with 95%% intervals on every "
                "labelled test split beside a linear probe; draft contradictions and CE beside the classifier "
                "alone and a template report; detector IoU",
    "export": "build a model bundle from the trained runs (safetensors + card.json)",
    "unpack": "write a bundle's detector, refiner, region heads, generator and tokenizer into the run folders, "
              "so `clip` retrains only the classifier and `export` records the rest as carried over",
    "all": "the whole chain: detector, clip, generator, export, evaluate, export with metrics",
    "score": "finding AUCs (95%% bootstrap intervals) of a `rrg-desk draft --each --jsonl` file of the "
             "labelled split's images, per source; region box IoU for the JSRT images among them",
}

log = logging.getLogger("train")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    for name, help_text in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", type=Path, help="YAML file merged over train/configs/default.yaml")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting, e.g. --set clip.loop.epochs=3 (repeatable)")
        p.add_argument("--resume", action="store_true", help="continue each run from its latest checkpoint")
        p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override the config's device")
        if name in ("evaluate", "export", "all", "unpack"):
            p.add_argument("--bundle", type=Path, help="bundle folder (default: the config's export.out)")
        if name in ("evaluate", "score"):
            p.add_argument("--split", default=None, help="split to evaluate (default: the config's)")
        if name == "score":
            p.add_argument("--jsonl", type=Path, required=True, help="drafts written by rrg-desk draft --each")
    _add_feedback_loop_commands(sub)
    return parser


def _add_feedback_loop_commands(sub) -> None:
    """`finetune` and `export-store` (issue 9); their own options, no heavy imports here."""
    text = ("fine-tune an installed bundle on local data (R2Gen layout or CSV) into a NEW bundle; evaluates "
            "parent and child on the local validation split side by side")
    p = sub.add_parser("finetune", help=text, description=text)
    p.add_argument("--from", dest="parent", type=Path, required=True, help="the parent bundle folder (only read)")
    p.add_argument("--data", type=Path, required=True, help="R2Gen folder (annotation.json + images/) or a CSV")
    p.add_argument("--layout", choices=("r2gen", "csv"), help="default: csv for a .csv file, else r2gen")
    p.add_argument("--train", choices=("generator", "classifier+generator", "all"),
                   help="what to train (default: the config's finetune.train, generator)")
    p.add_argument("--config", type=Path, help="YAML merged over default.yaml + finetune.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting")
    p.add_argument("--out", type=Path, help="new bundle folder (default: <user data>/bundles/<parent>-ft-<time>)")
    p.add_argument("--resume", action="store_true", help="continue each run from its latest checkpoint")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override the config's device")
    text = ("export the workstation's signed reports with their images into the R2Gen layout "
            "(annotation.json split by patient, images/<id>/<n>.png) for finetune")
    p = sub.add_parser("export-store", help=text, description=text)
    p.add_argument("--db", type=Path, help="the workstation database (default: the user data folder's)")
    p.add_argument("--out", type=Path, required=True, help="folder to write (empty, or an earlier export)")
    p.add_argument("--deidentify", action="store_true",
                   help="pseudonymous ids (salted hashes), no names, signers or study dates")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="only reports signed on or after this date")


def _config(args) -> dict:
    from train.config import load_config

    config = load_config(args.config, args.set)
    if args.device:
        config["device"] = args.device
    return config


def cmd_regions(config: dict, info) -> None:
    from train.data.jsrt import JsrtRegionDataset
    from train.tasks.common import spec_of

    out = {}
    for split in ("train", "val", "test"):
        dataset = JsrtRegionDataset(config["data"]["jsrt"], split, spec_of(config))
        for image_id in dataset.ids:
            out[image_id] = {k: [round(v, 2) for v in box] for k, box in dataset.region_boxes(image_id).items()}
    path = Path(config["out_dir"]) / "regions.json"
    if info.is_main:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1))
        print(f"{len(out)} images, {len(next(iter(out.values())))} regions each -> {path}")


def cmd_detector(config, info, resume):
    from train.engine import fit
    from train.tasks.common import loop_config, run_dir
    from train.tasks.detector_task import DetectorTask

    task = DetectorTask(config)
    result = fit(task, loop_config(config, config["detector"]), run_dir(config, "detector"), info, resume=resume)
    _write_provenance(task, run_dir(config, "detector"), info)
    from train.tasks.refiner_task import refiner_section

    if refiner_section(config) is not None:
        cmd_refiner(config, info, resume)
    return result


def cmd_refiner(config, info, resume):
    from train.engine import fit
    from train.export import _weights
    from train.tasks.common import loop_config, run_dir
    from train.tasks.detector_task import build_detector
    from train.tasks.refiner_task import (RefinerTask, build_refiner, choose_box_weight, refiner_section,
                                          write_selection)

    section = refiner_section(config)
    if section is None:
        raise FileNotFoundError("the config has no detector.refiner section")
    task = RefinerTask(config)
    folder = run_dir(config, "refiner")
    result = fit(task, loop_config(config, section), folder, info, resume=resume)
    _write_provenance(task, folder, info)
    if info.is_main and (result.stopped_early or result.epochs_run >= loop_config(config, section).epochs):
        detector = build_detector(config)
        detector.load_state_dict(_weights(run_dir(config, "detector")))
        refiner = build_refiner(config)
        refiner.load_state_dict(_weights(folder))
        write_selection(folder, choose_box_weight(config, detector, refiner, info.device))
    return result


def _write_provenance(task, folder: Path, info) -> None:
    """pretrained.json beside the run: where the initial weights came from (for the card)."""
    provenance = getattr(task, "pretrained_provenance", None)
    if provenance and info.is_main:
        (folder / "pretrained.json").write_text(json.dumps(provenance, indent=1))


def cmd_clip(config, info, resume):
    from train.engine import fit
    from train.tasks.clip_task import ClipTask
    from train.tasks.common import loop_config, run_dir

    task = ClipTask(config)
    loop = loop_config(config, config["clip"])
    result = fit(task, loop, run_dir(config, "clip"), info, resume=resume)
    if not (result.stopped_early or result.epochs_run >= loop.epochs):
        log.info("clip: training paused (max_steps); calibrate after --resume finishes it")
        return result
    if info.is_main:
        from train.calibration import calibrate_trained_classifier

        _write_provenance(task, run_dir(config, "clip"), info)
        calibrate_trained_classifier(config, info.device)
    return result


def cmd_generator(config, info, resume):
    from safetensors.torch import load_file

    from train.engine import fit
    from train.export import _weights
    from train.tasks.common import loop_config, run_dir, tokenizer_for
    from train.tasks.detector_task import trained_detector
    from train.tasks.generator_task import GeneratorPretrainTask, GeneratorTask, HeadsTask

    tokenizer = tokenizer_for(config)
    detector = trained_detector(config).to(info.device).eval()
    section = config["generator"]
    pre = GeneratorPretrainTask(config, detector)
    fit(pre, loop_config(config, section, "pretrain_loop"), run_dir(config, "generator_pretrain"), info, resume=resume)
    heads = HeadsTask(config, detector, tokenizer, info.device)
    fit(heads, loop_config(config, section, "heads_loop"), run_dir(config, "region_heads"), info, resume=resume)
    stage2 = GeneratorTask(config, detector, tokenizer, info.device)
    model = stage2.build_model()
    model.load_state_dict(load_file(str(_pretrained(run_dir(config, "generator_pretrain")))))
    return fit(stage2, loop_config(config, section), run_dir(config, "generator"), info, resume=resume, model=model)


def _pretrained(folder: Path) -> Path:
    return folder / "best.safetensors" if (folder / "best.safetensors").exists() else folder / "last.safetensors"


def cmd_export(config, info, bundle=None, metrics=None):
    from train.export import export_bundle

    if info.is_main:
        return export_bundle(config, bundle, metrics=metrics)
    return None


def cmd_evaluate(config, info, bundle=None, split=None):
    from rrg_desk.models.card import update_records
    from train.evaluate import evaluate_bundle, summary_table

    if not info.is_main:
        return None
    bundle = Path(bundle or config["export"]["out"])
    metrics = evaluate_bundle(config, bundle, split or config.get("evaluate", {}).get("split", "test"),
                              device=str(info.device))
    out = Path(config["out_dir"]) / "evaluation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(metrics, indent=2))
    update_records(bundle, metrics=metrics)  # the weights and the card's checksum are untouched
    print(summary_table(metrics))
    print(f"detector mean IoU {metrics['detector']['mean_iou']:.3f}, mAP@0.5 {metrics['detector']['map50']:.3f}")
    from train.classifier_evaluation import classifier_table

    from train.draft_evaluation import drafts_table

    print(classifier_table(metrics["classifier"]))
    print(drafts_table(metrics["drafts"]))
    print(f"full metrics: {out}")
    return metrics


def cmd_score(config, jsonl: Path, split: str) -> None:
    from train.classifier_evaluation import classifier_table, score_jsonl

    from train.tasks.detector_task import score_regions_jsonl

    result = score_jsonl(config, jsonl, split)
    print(f"{result['images']} drafted images of the {split} split in {jsonl}")
    print(classifier_table(result))
    regions = score_regions_jsonl(config, jsonl, split)
    if regions["images"]:
        print(f"\nregions on {regions['images']} JSRT images: mean IoU {regions['mean_iou']:.3f} "
              f"(five organs {regions['mean_iou_organs']:.3f}), mAP@0.5 {regions['map50']:.3f}")
        print("  " + ", ".join(f"{name} {iou:.3f}" for name, iou in sorted(regions["iou_per_region"].items())))


def cmd_all(config, info, resume, bundle=None):
    started = time.time()
    timings = {}
    for name, step in (("detector", cmd_detector), ("clip", cmd_clip), ("generator", cmd_generator)):
        t0 = time.time()
        step(config, info, resume)
        timings[name] = round(time.time() - t0, 1)
    bundle = Path(bundle or config["export"]["out"])
    cmd_export(config, info, bundle)
    if info.is_main:
        metrics = cmd_evaluate(config, info, bundle)
        metrics["train_seconds"] = timings
        metrics["total_seconds"] = round(time.time() - started, 1)
        from rrg_desk.models.card import update_records

        update_records(bundle, metrics=metrics)
        print(f"trained and exported in {metrics['total_seconds'] / 60:.1f} min: {bundle}")


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.command == "finetune":
        from train.finetune import main_finetune

        return main_finetune(args)
    if args.command == "export-store":
        from train.export_store import main_export_store

        return main_export_store(args)
    from rrg_desk.errors import UserFacingError
    from train.distributed import cleanup, init_distributed

    config = _config(args)
    info = init_distributed(config.get("device", "auto"))
    if not info.is_main:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        if args.command == "regions":
            cmd_regions(config, info)
        elif args.command in ("detector", "refiner", "clip", "generator"):
            {"detector": cmd_detector, "refiner": cmd_refiner, "clip": cmd_clip, "generator": cmd_generator}[
                args.command](config, info, args.resume)
        elif args.command == "unpack" and info.is_main:
            from train.unpack import unpack_bundle

            written = unpack_bundle(args.bundle or config["export"]["out"], config)
            print(f"unpacked {', '.join(written)} and the tokenizer into {config['out_dir']}")
        elif args.command == "export":
            path = cmd_export(config, info, args.bundle)
            if path:
                print(f"bundle written to {path}")
        elif args.command == "evaluate":
            cmd_evaluate(config, info, args.bundle, args.split)
        elif args.command == "score":
            cmd_score(config, args.jsonl, args.split or config.get("evaluate", {}).get("split", "test"))
        elif args.command == "all":
            cmd_all(config, info, args.resume, args.bundle)
    except (FileNotFoundError, UserFacingError) as exc:  # a missing run or a damaged bundle
        print(f"python -m train {args.command}: {exc}", file=sys.stderr)
        return 2
    finally:
        cleanup(info)
    return 0
