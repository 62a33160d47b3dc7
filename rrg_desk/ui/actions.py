"""Every user command once: its label, shortcut and help text.

The menus, the toolbar and Help ▸ Shortcuts are all built from ACTION_SPECS, so the
shortcut list can never disagree with what the keys do.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget


@dataclass(frozen=True)
class ActionSpec:
    key: str  # identifier used by the window's wiring
    text: str  # menu label (& marks the mnemonic)
    shortcut: str  # QKeySequence portable text; "" for none
    help: str
    menu: str  # "file", "view", "window", "help"


PRESET_LABELS = {"default": "File default", "full": "Full range", "lung": "Lung", "bone": "Bone"}

ACTION_SPECS: tuple[ActionSpec, ...] = (
    ActionSpec("open_file", "&Open file…", "Ctrl+O", "Open one or more image files", "file"),
    ActionSpec("open_folder", "Open &folder…", "Ctrl+Shift+O", "Open every image in a folder", "file"),
    ActionSpec("quit", "&Quit", "Ctrl+Q", "Quit RRG Desk", "file"),
    ActionSpec("fit", "&Fit to window", "F", "Fit the images to their panes", "view"),
    ActionSpec("one_to_one", "&1:1 pixels", "1", "One image pixel per screen pixel", "view"),
    ActionSpec("zoom_in", "Zoom &in", "=", "Zoom in (also: mouse wheel)", "view"),
    ActionSpec("zoom_out", "Zoom &out", "-", "Zoom out (also: mouse wheel)", "view"),
    ActionSpec("invert", "&Invert", "I", "Invert grey levels (black bone)", "view"),
    ActionSpec("reset", "&Reset", "R", "File window, not inverted, fitted", "view"),
    ActionSpec("preset_default", PRESET_LABELS["default"], "2", "Window stored in the file", "window"),
    ActionSpec("preset_full", PRESET_LABELS["full"], "3", "Whole value range of the image", "window"),
    ActionSpec("preset_lung", PRESET_LABELS["lung"], "4", "Lung window", "window"),
    ActionSpec("preset_bone", PRESET_LABELS["bone"], "5", "Bone window", "window"),
    ActionSpec("shortcuts", "&Shortcuts", "F1", "This list", "help"),
)

MOUSE_HELP: tuple[tuple[str, str], ...] = (
    ("Right-drag ←→", "Window width (right = wider)"),
    ("Right-drag ↑↓", "Window level (down = higher level, darker)"),
    ("Left- or middle-drag", "Pan"),
    ("Mouse wheel", "Zoom under the pointer"),
    ("Drop files/folder", "Open them"),
)


def preset_name(action_key: str) -> str | None:
    return action_key.removeprefix("preset_") if action_key.startswith("preset_") else None


def create_actions(parent: QWidget) -> dict[str, QAction]:
    actions = {}
    for spec in ACTION_SPECS:
        action = QAction(spec.text, parent)
        if spec.shortcut:
            action.setShortcut(QKeySequence(spec.shortcut))
        action.setStatusTip(spec.help)
        action.setToolTip(f"{spec.help} ({spec.shortcut})" if spec.shortcut else spec.help)
        actions[spec.key] = action
    return actions
