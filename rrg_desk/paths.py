"""Where RRG Desk finds its bundled resources and keeps user data (no Qt)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "rrg-desk"


def resources_dir() -> Path:
    """`resources/` of a source checkout, or of a frozen (PyInstaller) bundle."""
    override = os.environ.get("RRG_DESK_RESOURCES")
    if override:
        return Path(override)
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def samples_dir() -> Path:
    return resources_dir() / "samples"


def default_bundle_dir() -> Path:
    return resources_dir() / "models" / "default"


def user_data_dir() -> Path:
    """Database, autosaves, settings file. RRG_DESK_DATA_DIR overrides (tests use tmp_path)."""
    override = os.environ.get("RRG_DESK_DATA_DIR")
    path = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path
