"""`rrg-desk draft PATH [PATH ...]`: draft a report from the command line.

Prints the report, optionally writes JSON (the shape documented in the README), and exits
non-zero with a one-line message on bad input or a bad bundle.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from rrg_desk.fileio import write_text_atomic

EXIT_BAD_INPUT = 2
EXIT_BAD_BUNDLE = 3
EXIT_FAILED = 4


def build_parser() -> argparse.ArgumentParser:
    from rrg_desk.paths import default_bundle_dir

    parser = argparse.ArgumentParser(
        prog="rrg-desk draft",
        description="Draft a chest X-ray report for one study (DICOM, PNG or JPEG files, or a folder).")
    parser.add_argument("paths", nargs="+", type=Path,
                        help="image files and/or folders of ONE study (with --each: every image its own study)")
    parser.add_argument("--bundle", type=Path, default=default_bundle_dir(),
                        help="model bundle folder (default: the bundled default models)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to run the models (default: CUDA if present, else CPU)")
    parser.add_argument("--json", dest="json_out", type=Path, help="also write the draft as JSON to this file")
    parser.add_argument("--beam-size", type=int, default=None, help="beam size (default: the bundle's)")
    parser.add_argument("--max-len", type=int, default=None, help="longest sentence in tokens")
    parser.add_argument("--no-finding-heatmaps", action="store_true", help="skip Grad-CAM maps (faster)")
    parser.add_argument("--draft-anyway", action="store_true",
                        help="draft even when the input check says an image is not a chest radiograph")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    parser.add_argument("--each", action="store_true",
                        help="batch: draft every image file (folders walked recursively) as its own study; "
                             "needs --jsonl")
    parser.add_argument("--jsonl", type=Path, default=None, metavar="OUT.jsonl",
                        help="with --each: write one JSON line per image to this file (--json shape, or "
                             "{path, error} for a refused file)")
    return parser


def draft_to_json(draft, study, bundle_folder: Path) -> dict:
    """The documented CLI JSON shape (extra keys allowed)."""
    return {
        "bundle": str(bundle_folder),
        "bundle_id": draft.bundle_id,
        "device": draft.device,
        "study_uid": study.study_uid,
        "images": [{"path": str(im.source_path) if im.source_path else "", "view": im.view.value,
                    "width": im.width, "height": im.height} for im in study_images(study)],
        "regions": [{"name": r.name, "box": [round(v, 2) for v in r.box], "score": r.score,
                     "selected": r.selected, "image": r.image_index, "abnormal_score": r.abnormal_score,
                     "outline": [list(point) for point in r.outline]}
                    for r in draft.regions],
        "findings": [f.to_dict() for f in draft.findings],
        "sentences": [{"text": s.text, "region": s.region} for s in draft.sentences],
        "report": {"findings": draft.findings_text, "impression": draft.impression_text},
        "timings_ms": {k: round(v, 2) for k, v in draft.timings_ms.items()},
        "settings": draft.settings,
    }


def study_images(study):
    """Images in the order the pipeline uses them: the frontal first."""
    primary = study.primary_image
    return [primary] + [im for im in study.images if im is not primary]


def format_report(draft) -> str:
    lines = ["FINDINGS:", draft.findings_text or "(none)", "", "IMPRESSION:", draft.impression_text]
    positive = [f"{f.name} {f.probability:.2f}" for f in draft.positive_findings()]
    lines += ["", "Classifier (called present): " + (", ".join(positive) if positive else "none")]
    return "\n".join(lines)


def _fail(code: int, message: str) -> int:
    print(f"rrg-desk draft: {message}", file=sys.stderr)
    return code


def _not_pydicom_chatter(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.CRITICAL or not record.name.startswith("pydicom")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not args.verbose:
        # pydicom logs a traceback for every decoder that fails and a line for every
        # non-conformance; the reader already turns those into one typed refusal. Filtered at
        # the handler: importing pydicom resets its logger's level, and a PNG draft never imports it.
        for handler in logging.getLogger().handlers:
            handler.addFilter(_not_pydicom_chatter)
    if args.each or args.jsonl is not None:
        from rrg_desk.inference.batch import run_batch

        return run_batch(parser, args)
    from rrg_desk.imaging import load_studies

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        return _fail(EXIT_BAD_INPUT, f"no such file or folder: {', '.join(missing)}")
    studies, errors = load_studies(args.paths)
    if not studies:
        reason = errors[0].user_message if errors else "no DICOM, PNG or JPEG image found"
        return _fail(EXIT_BAD_INPUT, reason)
    if len(studies) > 1:
        return _fail(EXIT_BAD_INPUT, f"the paths hold {len(studies)} studies; draft one study at a time")
    for error in errors:
        print(f"rrg-desk draft: skipped {error.user_message}", file=sys.stderr)
    study = studies[0]

    from rrg_desk.errors import UserFacingError
    from rrg_desk.imaging.input_check import InputRefusal
    from rrg_desk.inference.device import DeviceUnavailableError
    from rrg_desk.inference.pipeline import DraftPipeline
    from rrg_desk.inference.request import DraftSettings
    from rrg_desk.models.card import BundleError

    if not (args.bundle / "card.json").exists():
        return _fail(EXIT_BAD_BUNDLE, f"no model bundle at {args.bundle} (card.json missing); train one with "
                                      "`python -m train all` or pass --bundle DIR")
    try:
        pipeline = DraftPipeline(args.bundle, device=args.device)
        settings = DraftSettings(beam_size=args.beam_size, max_len=args.max_len,
                                 finding_heatmaps=not args.no_finding_heatmaps, draft_anyway=args.draft_anyway)
        draft = pipeline.draft(study, settings)
    except InputRefusal as exc:
        return _fail(EXIT_BAD_INPUT, f"{exc.user_message} Use --draft-anyway to draft all the same.")
    except DeviceUnavailableError as exc:
        return _fail(EXIT_BAD_INPUT, exc.user_message)
    except BundleError as exc:
        return _fail(EXIT_BAD_BUNDLE, exc.user_message)
    except UserFacingError as exc:  # a DraftError, or any other failure worded for the user
        return _fail(EXIT_FAILED, exc.user_message)
    print(format_report(draft))
    if args.json_out:
        try:
            args.json_out.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(args.json_out, json.dumps(draft_to_json(draft, study, args.bundle), indent=2))
        except OSError as exc:
            return _fail(EXIT_FAILED, f"could not write {args.json_out}: {exc.strerror or exc}")
    return 0
