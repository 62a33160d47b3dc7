"""GUI entry point: `rrg-desk [PATH ...] [--screenshot OUT.png] [--bundle DIR]`.

Only Qt, numpy, the imaging readers and the store are imported here, so the window shows up
fast; once it is shown, the models load in the inference child process (never in this one:
rrg_desk.inference.process), so they are ready, or nearly, when the first study is opened.
--screenshot opens the study, drafts it with the configured bundle (or --bundle), shows the
first sentence's region and heatmap, saves the window as PNG and exits (non-zero with a
message when opening or drafting fails).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from rrg_desk import __version__
from rrg_desk.paths import resources_dir
from rrg_desk.app.settings import AppSettings
from rrg_desk.ui.main_window import MainWindow
from rrg_desk.ui.theme import apply_dark_theme, apply_theme

log = logging.getLogger(__name__)

SCREENSHOT_SIZE = (1600, 1000)
HEADLESS_TIMEOUT_MS = 120_000  # --screenshot / --benchmark-startup never hang a script
SHOWN_MARKER = "RRG_DESK_SHOWN"  # --benchmark-startup prints "<marker> <unix time>"
FIRST_DRAFT_MARKER = "RRG_DESK_FIRST_DRAFT"  # --benchmark-first-draft prints "<marker> <unix time> <json>"


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rrg-desk", description="Chest X-ray reporting workstation.")
    parser.add_argument("paths", nargs="*", type=Path, help="image files and/or study folders to open")
    parser.add_argument("--screenshot", type=Path, metavar="OUT.png",
                        help="render the window once the study is shown, save it as PNG and exit")
    parser.add_argument("--bundle", type=Path, metavar="DIR", help="model bundle folder (overrides the settings)")
    parser.add_argument("--no-draft", action="store_true", help="with --screenshot: the viewer only, no draft")
    parser.add_argument("--benchmark-startup", action="store_true",
                        help=f"print '{SHOWN_MARKER} <unix time>' once the study is shown, then exit")
    parser.add_argument("--benchmark-first-draft", action="store_true",
                        help=f"auto-draft the study, print '{FIRST_DRAFT_MARKER} <unix time> <json of the "
                             "moments: shown, opened, models ready>' once the draft is on screen, then exit")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def create_application(argv0: str = "rrg-desk") -> QApplication:
    app = QApplication.instance() or QApplication([argv0])
    app.setApplicationName("RRG Desk")
    app.setApplicationVersion(__version__)
    icon = resources_dir() / "icons" / "rrg-desk.png"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    apply_dark_theme(app)
    return app


class HeadlessRun:
    """Drives --screenshot / --benchmark-startup: wait for the study, act, exit."""

    def __init__(self, app: QApplication, window: MainWindow, args: argparse.Namespace) -> None:
        self.app, self.window, self.args = app, window, args
        self.moments: dict[str, float] = {}  # --benchmark-first-draft: unix times of what happened
        QTimer.singleShot(HEADLESS_TIMEOUT_MS, self._timed_out)
        if args.benchmark_first_draft:
            window.worker.modelsStateChanged.connect(
                lambda state, _text: state == "ready" and self.moments.setdefault("models_ready", time.time()))

    def start(self) -> None:
        if self.args.paths:
            self.window.loadHandled.connect(self._on_load_handled)
        else:
            QTimer.singleShot(0, self._finish)

    def _on_load_handled(self, _request_id: int) -> None:
        if self.window.current_study is None:
            box = self.window.last_error_box
            detail = f"{box.text()}\n{box.informativeText()}" if box is not None else "no study loaded"
            self._fail(2, f"rrg-desk: could not open {', '.join(map(str, self.args.paths))}:\n{detail}")
            return
        self.moments["opened"] = time.time()
        if self.args.benchmark_first_draft and self.window.session is not None:
            self._first_draft()
            return
        if self.args.screenshot is not None and not self.args.no_draft and self.window.session is not None:
            self._draft_then_finish()
            return
        QTimer.singleShot(0, self._finish)  # let the layout settle (fit-to-pane) first

    def _draft_then_finish(self) -> None:
        reporting, session = self.window.reporting, self.window.session
        reporting.draftFailed.connect(lambda text: self._fail(4, f"rrg-desk: drafting failed: {text}"))
        reporting.draftApplied.connect(lambda _draft: QTimer.singleShot(0, self._show_first_sentence))
        if self.window.worker.is_busy():
            return  # auto-draft is already running
        if session.draft is not None and session.document is not None:
            QTimer.singleShot(0, self._show_first_sentence)
        elif reporting.request_draft() is None:
            self._fail(4, "rrg-desk: the study cannot be drafted (already signed?)")

    def _first_draft(self) -> None:
        """The auto-draft (models loading or ready since the window showed), until it is on screen."""
        reporting = self.window.reporting
        reporting.draftFailed.connect(lambda text: self._fail(4, f"rrg-desk: drafting failed: {text}"))
        reporting.draftApplied.connect(lambda _draft: QTimer.singleShot(0, self._finish))
        if not self.window.worker.is_busy() and reporting.request_draft() is None:
            self._fail(4, "rrg-desk: the study cannot be drafted (already signed?)")

    def _show_first_sentence(self) -> None:
        """Put the cursor in the first findings sentence: its region and heatmap light up."""
        document = self.window.session.document
        sentences = [s for s in document.findings if s.region] if document is not None else []
        if sentences:
            self.window.editor.scroll_to_sentence(sentences[0].id)
        QTimer.singleShot(0, self._finish)

    def _finish(self) -> None:
        self.app.processEvents()
        if self.args.benchmark_startup:
            print(f"{SHOWN_MARKER} {time.time():.6f}", flush=True)
        if self.args.benchmark_first_draft:
            print(f"{FIRST_DRAFT_MARKER} {time.time():.6f} {json.dumps(self.moments)}", flush=True)
        if self.args.screenshot is not None:
            out = self.args.screenshot
            out.parent.mkdir(parents=True, exist_ok=True)
            if not self.window.grab().save(str(out), "PNG"):
                self._fail(1, f"rrg-desk: could not write the screenshot to {out}")
                return
        self.window.close()
        self.app.exit(0)

    def _timed_out(self) -> None:
        self._fail(3, f"rrg-desk: timed out after {HEADLESS_TIMEOUT_MS // 1000} s waiting for the study")

    def _fail(self, code: int, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        self.window.close()
        self.app.exit(code)


def run_gui(argv: list[str] | None = None) -> int:
    args = build_arg_parser().parse_args(sys.argv[1:] if argv is None else argv)
    app = create_application()
    settings = AppSettings.load()
    if args.bundle is not None:
        settings.bundle_dir = str(args.bundle.resolve())
    if settings.theme != "dark":
        apply_theme(app, settings.theme)
    window = MainWindow(app_settings=settings)
    window.auto_draft_enabled = not (args.benchmark_startup or args.no_draft)
    headless = args.screenshot is not None or args.benchmark_startup or args.benchmark_first_draft
    if headless:
        window.resize(*SCREENSHOT_SIZE)
        runner = HeadlessRun(app, window, args)
        runner.start()
    window.show()
    if headless and args.benchmark_first_draft:
        runner.moments["shown"] = time.time()
    identity = None if headless else window.confirm_identity()  # once: who acts, before the first action
    if args.paths:
        if identity is not None:  # the study opens (and is audited) under the confirmed name
            identity.finished.connect(lambda _result: window.open_paths(args.paths))
        else:
            window.open_paths(args.paths)
    code = app.exec()
    window.loader.wait_for_done(5_000)
    return int(code)
