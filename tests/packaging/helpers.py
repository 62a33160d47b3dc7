"""Shared helpers of the packaging tests: the checkout's root and its packaging/ scripts."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_packaging_script(name: str) -> ModuleType:
    """packaging/<name>.py as a module (packaging/ holds scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"rrg_desk_{name}", ROOT / "packaging" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
