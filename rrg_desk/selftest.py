"""`rrg-desk --selftest`: prove that an installed (frozen) RRG Desk works, end to end, headless.

Opens a bundled sample study in the real main window on Qt's offscreen platform, drafts it
with the bundled models, exports the report in every format (TXT, JSON, FHIR, DICOM SR, PNG,
PDF) to a temporary folder, reads each file back, prints ONE summary line on stdout and
exits 0. Any failure prints one "rrg-desk selftest: FAILED ..." line on stderr and exits
non-zero. The user's worklist and settings are never touched (temporary data folder).

Qt is imported only inside `main`, after QT_QPA_PLATFORM=offscreen is set: an installer's
post-install check or a CI runner has no display.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_BAD_SETUP, EXIT_TIMEOUT = 0, 1, 2, 3
EXPORT_FORMATS = ("txt", "json", "fhir", "sr", "png", "pdf")
DEFAULT_TIMEOUT_S = 600.0  # a cold CPU draft with the default bundle takes seconds; this is a hang guard
COMPREHENSIVE_SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.33"
PREFIX = "rrg-desk selftest"


class SelftestFailure(Exception):
    """One failed step: `stage` says where (open, draft, export, check:<format>)."""

    def __init__(self, stage: str, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage, self.message, self.code = stage, message, code


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rrg-desk --selftest",
                                     description="Open a sample study offscreen, draft, export, check; exit 0 if all works.")
    parser.add_argument("--study", type=Path, help="study folder (default: the first bundled sample study)")
    parser.add_argument("--bundle", type=Path, help="model bundle folder (default: the bundled default models)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="write the exports it checks into DIR (created if needed) and keep them there, "
                             "for external validators (dciodvfy, dsrdump, a FHIR validator, a PDF reader)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds before giving up")
    return parser


# --- reading the exports back (no Qt) -------------------------------------------------------
def _require(condition: bool, stage: str, message: str) -> None:
    if not condition:
        raise SelftestFailure(stage, message)


def check_txt(path: Path, findings_text: str) -> None:
    text = path.read_text(encoding="utf-8")
    _require("FINDINGS:" in text and "IMPRESSION:" in text, "check:txt", "no FINDINGS/IMPRESSION sections")
    _require(findings_text in text, "check:txt", "the findings text is not in the file")


def check_json(path: Path, findings_text: str, study_uid: str, bundle_id: str) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    _require(data.get("format") == "rrg-desk-report", "check:json", f"format is {data.get('format')!r}")
    _require(data.get("findings") == findings_text, "check:json", "findings differ from the report")
    _require(data["study"]["study_instance_uid"] == study_uid, "check:json", "wrong study UID")
    _require((data.get("model") or {}).get("bundle_id") == bundle_id, "check:json", "wrong model bundle id")


def check_fhir(path: Path, findings_text: str) -> None:
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport

    data = json.loads(path.read_text(encoding="utf-8"))
    report = DiagnosticReport.model_validate(data)  # raises (ValueError) if it is not valid FHIR R4B
    _require(report.status == "preliminary", "check:fhir", f"status {report.status!r} for an unsigned draft")
    forms = {form["contentType"].split(";")[0]: base64.b64decode(form["data"]) for form in data["presentedForm"]}
    _require("text/plain" in forms, "check:fhir", "no text/plain presentedForm")
    _require(findings_text in forms["text/plain"].decode("utf-8"), "check:fhir", "findings missing from the text")
    _require(forms.get("image/png", b"").startswith(b"\x89PNG"), "check:fhir", "no PNG key image attached")


def _sr_texts(items) -> list[str]:
    texts = []
    for item in items or []:
        if "TextValue" in item:
            texts.append(str(item.TextValue))
        texts.extend(_sr_texts(item.get("ContentSequence")))
    return texts


def check_sr(path: Path, findings_text: str, study_uid: str) -> None:
    import pydicom

    sr = pydicom.dcmread(path)
    _require(sr.Modality == "SR" and sr.SOPClassUID == COMPREHENSIVE_SR_CLASS, "check:sr",
             f"not a Comprehensive SR ({sr.get('Modality')}, {sr.get('SOPClassUID')})")
    _require(sr.StudyInstanceUID == study_uid, "check:sr", "wrong study UID")
    _require((findings_text or "-") in _sr_texts(sr.ContentSequence), "check:sr", "findings text item missing")


def check_png(path: Path, width: int, height: int) -> None:
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        _require(image.size == (width, height), "check:png", f"size {image.size}, expected {(width, height)}")
        _require(image.getextrema()[0][1] > 0, "check:png", "the image is black")


def check_pdf(path: Path) -> None:
    data = path.read_bytes()
    _require(data.startswith(b"%PDF-"), "check:pdf", "no %PDF- header")
    _require(b"%%EOF" in data[-1024:], "check:pdf", "no %%EOF trailer (truncated?)")
    _require(b"/Type /Page" in data or b"/Type/Page" in data, "check:pdf", "no page")


def check_exports(written: dict[str, Path], *, findings_text: str, study_uid: str, bundle_id: str,
                  frontal_size: tuple[int, int]) -> None:
    """Parse every exported file back and compare with the report on screen."""
    missing = [fmt for fmt in EXPORT_FORMATS if fmt not in written or not Path(written[fmt]).is_file()]
    _require(not missing, "export", f"not written: {', '.join(missing)}")
    checks = {
        "txt": lambda: check_txt(written["txt"], findings_text),
        "json": lambda: check_json(written["json"], findings_text, study_uid, bundle_id),
        "fhir": lambda: check_fhir(written["fhir"], findings_text),
        "sr": lambda: check_sr(written["sr"], findings_text, study_uid),
        "png": lambda: check_png(written["png"], *frontal_size),
        "pdf": lambda: check_pdf(written["pdf"]),
    }
    for fmt, check in checks.items():
        try:
            check()
        except SelftestFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - a file that does not parse back is a failed check
            raise SelftestFailure(f"check:{fmt}", f"unreadable ({type(exc).__name__}: {exc})") from exc


# --- driving the window ---------------------------------------------------------------------
def _run_window(study_dir: Path, bundle_dir: Path, device: str, out_dir: Path, timeout_s: float) -> dict:
    """Open, draft and export in the real MainWindow; returns figures for the summary line."""
    from PySide6.QtCore import QTimer

    from rrg_desk.app.settings import AppSettings
    from rrg_desk.ui.app import create_application
    from rrg_desk.ui.main_window import MainWindow

    started = time.perf_counter()
    app = create_application()
    settings = AppSettings(bundle_dir=str(bundle_dir), device=device, user_name="selftest")
    window = MainWindow(app_settings=settings)
    window.auto_draft_enabled = False  # the selftest asks for the draft itself, once
    outcome: dict = {"error": None, "figures": {}}
    marks: dict[str, float] = {}
    messages: list[str] = []

    def fail(error: SelftestFailure) -> None:
        if outcome["error"] is None:
            outcome["error"] = error
        app.exit(error.code)

    def on_loaded(_request_id: int) -> None:
        marks["opened"] = time.perf_counter()
        if window.current_study is None or window.session is None or window.session.record is None:
            detail = messages[-1] if messages else "no study loaded"
            box = window.last_error_box
            if box is not None:
                detail = f"{box.text()} {box.informativeText()}".strip()
            fail(SelftestFailure("open", detail))
        elif window.reporting.request_draft() is None:
            fail(SelftestFailure("draft", "the study could not be drafted"))

    def on_draft(draft) -> None:
        marks["drafted"] = time.perf_counter()
        try:
            session = window.session
            written = window.signoff.export(list(EXPORT_FORMATS), out_dir, anonymise=False, key_image=True)
            if set(written) != set(EXPORT_FORMATS) and messages:
                raise SelftestFailure("export", messages[-1])
            primary = session.study.primary_image
            check_exports(written, findings_text=session.document.findings_text(), study_uid=session.study_uid,
                          bundle_id=draft.bundle_id, frontal_size=(primary.width, primary.height))
            _require(bool(draft.regions), "draft", "no regions detected")
            _require(bool(draft.findings), "draft", "no finding probabilities")
            outcome["figures"] = {
                "images": len(session.study.images), "regions": len(draft.regions),
                "selected": sum(r.selected for r in draft.regions), "sentences": len(draft.sentences),
                "findings": len(draft.findings), "device": draft.device, "bundle_id": draft.bundle_id,
            }
        except SelftestFailure as exc:
            fail(exc)
            return
        except Exception as exc:  # noqa: BLE001 - any surprise is a failed selftest, with its reason
            log.exception("selftest check crashed")
            fail(SelftestFailure("check", f"{type(exc).__name__}: {exc}"))
            return
        marks["checked"] = time.perf_counter()
        app.exit(EXIT_OK)

    window.loadHandled.connect(on_loaded)
    window.reporting.message.connect(lambda title, text: messages.append(f"{title}: {text}"))
    window.reporting.draftApplied.connect(on_draft)
    window.reporting.draftFailed.connect(lambda text: fail(SelftestFailure("draft", text)))
    QTimer.singleShot(int(timeout_s * 1000),
                      lambda: fail(SelftestFailure("timeout", f"no result after {timeout_s:.0f} s", EXIT_TIMEOUT)))
    window.show()
    marks["shown"] = time.perf_counter()
    window.open_paths([study_dir])
    code = app.exec()
    window.close()
    window.loader.wait_for_done(5_000)
    if outcome["error"] is not None:
        raise outcome["error"]
    if code != EXIT_OK:
        raise SelftestFailure("qt", f"the event loop ended with code {code}")
    seconds = {name: marks[name] - started for name in marks}
    return outcome["figures"] | {"window_s": seconds.get("shown", 0.0),
                                 "draft_s": marks["drafted"] - marks["opened"],
                                 "export_s": marks["checked"] - marks["drafted"]}


@contextlib.contextmanager
def _scratch_user_data(scratch: Path) -> Iterator[None]:
    """A throw-away worklist/settings folder: the selftest never touches the user's."""
    previous = os.environ.get("RRG_DESK_DATA_DIR")
    os.environ["RRG_DESK_DATA_DIR"] = str(scratch / "data")
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("RRG_DESK_DATA_DIR", None)
        else:
            os.environ["RRG_DESK_DATA_DIR"] = previous


def prepare_keep_dir(keep: Path) -> Path:
    """The --keep folder, created and checked writable before anything runs (EXIT_BAD_SETUP otherwise)."""
    keep = keep.expanduser().resolve()
    if keep.exists() and not keep.is_dir():
        raise SelftestFailure("setup", f"--keep {keep} is a file, not a folder", EXIT_BAD_SETUP)
    try:
        keep.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=keep):
            pass
    except OSError as exc:
        raise SelftestFailure("setup", f"--keep {keep} cannot be written ({exc.strerror or exc})",
                              EXIT_BAD_SETUP) from exc
    return keep


def _default_study() -> Path | None:
    from rrg_desk.paths import samples_dir

    folders = sorted(p for p in samples_dir().glob("study*") if p.is_dir())
    return folders[0] if folders else None


def main(argv: list[str] | None = None) -> int:
    args = build_arg_parser().parse_args(sys.argv[1:] if argv is None else argv)
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any Qt import: no display needed
    for name, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(name, value)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from rrg_desk.paths import default_bundle_dir

    study_dir = args.study or _default_study()
    bundle_dir = args.bundle or default_bundle_dir()
    started = time.perf_counter()
    try:
        if study_dir is None or not study_dir.is_dir():
            raise SelftestFailure("setup", f"no sample study at {study_dir}", EXIT_BAD_SETUP)
        if not (bundle_dir / "card.json").is_file():
            raise SelftestFailure("setup", f"no model bundle at {bundle_dir} (card.json missing)", EXIT_BAD_SETUP)
        keep = prepare_keep_dir(args.keep) if args.keep is not None else None
        with tempfile.TemporaryDirectory(prefix="rrg-desk-selftest-") as scratch, _scratch_user_data(Path(scratch)):
            out_dir = keep or Path(scratch) / "exports"
            out_dir.mkdir(parents=True, exist_ok=True)
            figures = _run_window(study_dir.resolve(), bundle_dir.resolve(), args.device, out_dir, args.timeout)
    except SelftestFailure as exc:
        print(f"{PREFIX}: FAILED at {exc.stage}: {exc.message}", file=sys.stderr, flush=True)
        return exc.code
    total = time.perf_counter() - started
    print(f"{PREFIX}: OK {study_dir.name} ({figures['images']} image(s)); window {figures['window_s']:.1f} s; "
          f"draft {figures['regions']} regions ({figures['selected']} selected), {figures['sentences']} sentences, "
          f"{figures['findings']} findings in {figures['draft_s']:.1f} s on {figures['device']} "
          f"[bundle {figures['bundle_id']}]; exported+checked {' '.join(EXPORT_FORMATS)} in "
          f"{figures['export_s']:.1f} s; total {total:.1f} s" + (f"; kept in {keep}" if keep else ""), flush=True)
    return EXIT_OK
