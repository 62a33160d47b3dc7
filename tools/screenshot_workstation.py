"""A screenshot of the workstation after drafting a sample study with the default bundle: organ
outlines of the described regions, one sentence linked with its (region-grounded) heatmap.

    QT_QPA_PLATFORM=offscreen python tools/screenshot_workstation.py docs/screenshots/workstation.png
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RRG_DESK_DATA_DIR", tempfile.mkdtemp(prefix="rrg-shot-"))  # never the user's settings

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from rrg_desk.app.settings import AppSettings  # noqa: E402
from rrg_desk.models.regions import SCR_ORGANS  # noqa: E402
from rrg_desk.paths import samples_dir  # noqa: E402
from rrg_desk.store import Database  # noqa: E402
from rrg_desk.ui.main_window import MainWindow  # noqa: E402
from rrg_desk.ui.settings import open_settings  # noqa: E402


def wait_for(signal, timeout_ms: int = 120_000) -> None:
    loop = QEventLoop()
    signal.connect(lambda *_: loop.quit())
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots/workstation.png")
    study = Path(sys.argv[2]) if len(sys.argv) > 2 else samples_dir() / "study2"
    app = QApplication.instance() or QApplication([])
    settings = AppSettings(device="cpu", auto_draft=False, user_name="Dr Screenshot", identity_confirmed=True)
    window = MainWindow(settings=open_settings(), app_settings=settings,
                        database=Database.open(Path(os.environ["RRG_DESK_DATA_DIR"]) / "worklist.sqlite3"))
    window.resize(1600, 1000)
    window.show()
    window.open_paths([study])
    wait_for(window.loadHandled)
    window.commands["draft"].trigger()
    wait_for(window.reporting.draftApplied)
    document = window.session.document
    organ_sentences = [s for s in document.findings if s.region in SCR_ORGANS]
    if organ_sentences:
        window.reporting._on_sentence_activated(organ_sentences[0].id)
    for _ in range(20):
        app.processEvents()
    out.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(out))
    print(f"{out}: {len(document.findings)} findings sentences; linked: "
          f"{organ_sentences[0].text if organ_sentences else '(none about an organ)'}")
    window.close()


if __name__ == "__main__":
    main()
