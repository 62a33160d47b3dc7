"""rrg_desk.pacs is core: it never imports Qt (the panel lives in rrg_desk/ui/pacs_panel.py)."""
from __future__ import annotations

import subprocess
import sys

from tests.test_architecture import ROOT, _imported_modules


def test_pacs_package_never_imports_qt_or_the_ui():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "rrg_desk" / "pacs").rglob("*.py")
                 if any(m.split(".")[0] in ("PySide6", "shiboken6") or m.startswith("rrg_desk.ui")
                        for m in _imported_modules(p))]
    assert offenders == []


def test_importing_pacs_does_not_load_qt():
    code = "import sys, rrg_desk.pacs; print('PySide6' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
