"""`rrg-desk draft --each PATH... --jsonl OUT`: every image file its own study, models loaded once.

One JSON object per input file, in input order (folders walked recursively in path order),
each flushed to disk as soon as it is written, so a run that dies keeps what it drafted:
    drafted: the `--json` shape (cli.draft_to_json), images[0].path the input path
    refused: {"path": ..., "error": "<one-line user message>"}
A refusal is any UserFacingError (unreadable or corrupt file, not an image, an input check).
Anything else is an unexpected failure: logged with its traceback, written
as an error line, and the run goes on but exits EXIT_FAILED.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from rrg_desk.errors import UserFacingError
from rrg_desk.inference.cli import EXIT_BAD_BUNDLE, EXIT_BAD_INPUT, EXIT_FAILED, _fail, draft_to_json

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 130  # the shell's code for Ctrl+C


@dataclass
class BatchSummary:
    total: int = 0
    drafted: int = 0
    refused: int = 0
    failed: int = 0
    seconds: float = 0.0
    drafted_seconds: list[float] = field(default_factory=list)  # per drafted file, in order

    @property
    def per_image_after_first(self) -> float | None:
        rest = self.drafted_seconds[1:]
        return sum(rest) / len(rest) if rest else None

    def line(self, out: Path) -> str:
        problems = f"{self.refused} refused" + (f", {self.failed} failed" if self.failed else "")
        text = f"drafted {self.drafted} of {self.total} images ({problems}) in {self.seconds:.1f} s"
        if self.per_image_after_first is not None:
            text += f", {self.per_image_after_first:.2f} s per image after the first"
        return f"{text} -> {out}"


def check_batch_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse option combinations that make no sense (argparse exits with code 2)."""
    if args.each and args.jsonl is None:
        parser.error("--each needs --jsonl OUT.jsonl (one JSON line per image)")
    if args.jsonl is not None and not args.each:
        parser.error("--jsonl needs --each (to draft the paths as one study, use --json OUT)")
    if args.json_out is not None:
        parser.error("--json and --each cannot be combined; --each writes every draft to --jsonl")


def batch_files(paths: list[Path], exclude: Path | None = None) -> list[Path]:
    """Files named, and files under folders named (recursively, path order); each file once."""
    from rrg_desk.imaging.study import walk_image_files

    seen = {exclude.resolve()} if exclude is not None else set()
    files = []
    for path in paths:
        for file in walk_image_files(path) if path.is_dir() else [path]:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files


def single_image_study(path: Path):
    """Read one file as its own study (raises ImageReadError with a user_message)."""
    from rrg_desk.imaging import Study, read_image
    from rrg_desk.imaging.study import folder_study_uid

    image = read_image(path)
    # a PNG/JPEG has no Study Instance UID: a stable one from the file, not the folder it shares
    uid = image.study_uid or folder_study_uid(path)
    return Study(study_uid=uid, images=[image], patient=image.patient, study_date=image.study_date,
                 accession_number=image.accession_number, description=image.study_description, source=path)


def _write_line(out: IO[str], record: dict) -> None:
    out.write(json.dumps(record) + "\n")
    out.flush()
    os.fsync(out.fileno())


def draft_one(pipeline, settings, path: Path, bundle_folder: Path) -> tuple[dict, str]:
    """(JSON record, outcome) for one file; outcome is 'drafted', 'refused' or 'failed'."""
    try:
        study = single_image_study(path)
        draft = pipeline.draft(study, settings)
        return draft_to_json(draft, study, bundle_folder), "drafted"
    except UserFacingError as exc:
        log.info("refused %s: %s", path, exc.user_message)
        return {"path": str(path), "error": " ".join(exc.user_message.split())}, "refused"
    except Exception as exc:  # noqa: BLE001 - one bad file must not end an overnight run
        log.error("unexpected failure on %s", path, exc_info=True)
        detail = " ".join(str(exc).split())
        return {"path": str(path), "error": f"unexpected error ({type(exc).__name__}): {detail}"}, "failed"


def draft_each(pipeline, settings, files: list[Path], out: IO[str], bundle_folder: Path,
               summary: BatchSummary) -> BatchSummary:
    """Draft every file into `out`, one flushed line each; counts go into `summary`."""
    summary.total = len(files)
    for index, path in enumerate(files, 1):
        start = time.perf_counter()
        record, outcome = draft_one(pipeline, settings, path, bundle_folder)
        _write_line(out, record)
        elapsed = time.perf_counter() - start
        setattr(summary, outcome, getattr(summary, outcome) + 1)
        if outcome == "drafted":
            summary.drafted_seconds.append(elapsed)
        log.info("%d/%d %s: %s in %.2f s", index, len(files), path, outcome, elapsed)
    return summary


def _load_pipeline(args: argparse.Namespace):
    """(pipeline, None) with the models loaded, or (None, exit code) after a one-line message."""
    from rrg_desk.inference.device import DeviceUnavailableError
    from rrg_desk.inference.pipeline import DraftPipeline
    from rrg_desk.models.card import BundleError

    if not (args.bundle / "card.json").exists():
        return None, _fail(EXIT_BAD_BUNDLE, f"no model bundle at {args.bundle} (card.json missing); train one "
                                            "with `python -m train all` or pass --bundle DIR")
    try:
        pipeline = DraftPipeline(args.bundle, device=args.device)
        pipeline.bundle  # load (and verify) the models now, before any drafting
    except DeviceUnavailableError as exc:
        return None, _fail(EXIT_BAD_INPUT, exc.user_message)
    except BundleError as exc:
        return None, _fail(EXIT_BAD_BUNDLE, exc.user_message)
    return pipeline, None


def run_batch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """The `--each` mode of `rrg-desk draft`; returns the process exit code."""
    from rrg_desk.inference.request import DraftSettings

    check_batch_args(parser, args)
    files = batch_files(args.paths, exclude=args.jsonl)
    if not files:
        return _fail(EXIT_BAD_INPUT, "no DICOM, PNG or JPEG image found")
    summary, started = BatchSummary(), time.perf_counter()
    pipeline, code = _load_pipeline(args)
    if pipeline is None:
        return code
    # Grad-CAM finding maps are not in the JSONL: skip them
    settings = DraftSettings(beam_size=args.beam_size, max_len=args.max_len, finding_heatmaps=False,
                             draft_anyway=args.draft_anyway)
    try:
        args.jsonl.parent.mkdir(parents=True, exist_ok=True)
        with open(args.jsonl, "w", encoding="utf-8") as out:
            draft_each(pipeline, settings, files, out, args.bundle, summary)
    except OSError as exc:
        return _fail(EXIT_FAILED, f"could not write {args.jsonl}: {exc.strerror or exc}")
    except KeyboardInterrupt:  # what was drafted is on disk; say how far it got
        summary.seconds = time.perf_counter() - started
        print("interrupted: " + summary.line(args.jsonl), flush=True)
        return EXIT_INTERRUPTED
    summary.seconds = time.perf_counter() - started
    print(summary.line(args.jsonl), flush=True)
    if summary.failed:
        return EXIT_FAILED
    return 0 if summary.drafted else EXIT_BAD_INPUT
