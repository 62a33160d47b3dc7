"""Layer rules from DESIGN.md: the core never imports Qt; rrg_desk never imports train."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE_PACKAGES = ["imaging", "models", "inference", "reports", "store", "pacs", "app"]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_packages_never_import_qt_even_lazily():
    offenders = []
    for package in CORE_PACKAGES:
        for path in (ROOT / "rrg_desk" / package).rglob("*.py"):
            if any(m.split(".")[0] in ("PySide6", "shiboken6") for m in _imported_modules(path)):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_trainer_never_imports_qt_or_ui():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "train").rglob("*.py")
                 if any(m.split(".")[0] == "PySide6" or m.startswith("rrg_desk.ui")
                        for m in _imported_modules(p))]
    assert offenders == []


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_importing_the_core_does_not_load_qt():
    code = ("import sys, rrg_desk.imaging, rrg_desk.reports, rrg_desk.paths; "
            "print('PySide6' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_vulture_finds_no_dead_code():
    """`make lint` runs the same check; false positives go in tools/vulture_whitelist.py with a reason."""
    proc = subprocess.run([sys.executable, "-m", "vulture", "rrg_desk", "train", "tools/vulture_whitelist.py"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_function_is_longer_than_80_lines():
    too_long = []
    for folder in ("rrg_desk", "train", "tools", "bench", "fuzz", "packaging"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > 80:
                        too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert too_long == []
