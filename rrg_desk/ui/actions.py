"""Every user command once: its label, shortcut and help text.

Every QAction (the window places them in its menus and toolbar) and Help ▸ Shortcuts come
from ACTION_SPECS, so the shortcut list can never disagree with what the keys do.
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


PRESET_LABELS = {"default": "File default", "full": "Full range", "lung": "Lung", "bone": "Bone"}

ACTION_SPECS: tuple[ActionSpec, ...] = (
    ActionSpec("open_file", "&Open file…", "Ctrl+O", "Open one or more image files"),
    ActionSpec("open_folder", "Open &folder…", "Ctrl+Shift+O", "Open every image in a folder"),
    ActionSpec("quit", "&Quit", "Ctrl+Q", "Quit RRG Desk"),
    ActionSpec("fit", "&Fit to window", "F", "Fit the images to their panes"),
    ActionSpec("one_to_one", "&1:1 pixels", "1", "One image pixel per screen pixel"),
    ActionSpec("zoom_in", "Zoom &in", "=", "Zoom in (also: mouse wheel)"),
    ActionSpec("zoom_out", "Zoom &out", "-", "Zoom out (also: mouse wheel)"),
    ActionSpec("invert", "&Invert", "I", "Invert grey levels (black bone)"),
    ActionSpec("reset", "&Reset", "R", "File window, not inverted, fitted"),
    ActionSpec("preset_default", PRESET_LABELS["default"], "2", "Window stored in the file"),
    ActionSpec("preset_full", PRESET_LABELS["full"], "3", "Whole value range of the image"),
    ActionSpec("preset_lung", PRESET_LABELS["lung"], "4", "Lung window"),
    ActionSpec("preset_bone", PRESET_LABELS["bone"], "5", "Bone window"),
    ActionSpec("import_files", "&Import files to worklist…", "Ctrl+I", "Add image files to the worklist"),
    ActionSpec("undo", "&Undo", "Ctrl+Z", "Undo the last edit in the report"),
    ActionSpec("redo", "&Redo", "Ctrl+Y", "Redo"),
    ActionSpec("settings", "&Settings…", "Ctrl+,", "Model bundle, device, beam size, auto-draft, theme, name, institution"),
    ActionSpec("bundles", "Model &bundles…", "Ctrl+Shift+B",
               "Installed model bundles: cards, make active, compare two, export signed reports for training"),
    ActionSpec("audit_log", "&Audit log…", "Ctrl+Shift+L",
               "Who did what, when (admin): filter by study, user and action; export CSV"),
    ActionSpec("identity", "&Who am I…", "", "Confirm or change the name every action and signature carries"),
    ActionSpec("toggle_regions", "Region &boxes", "H", "Show or hide the region boxes"),
    ActionSpec("toggle_all_regions", "&All regions", "Shift+H",
               "Also show the regions the model wrote no sentence about"),
    ActionSpec("draft", "&Draft report", "Ctrl+D", "Ask the model for a draft of the open study"),
    ActionSpec("cancel_draft", "&Cancel drafting", "Ctrl+Shift+D", "Stop the running draft"),
    ActionSpec("accept_sentence", "&Accept sentence", "Alt+A", "Accept the model sentence at the cursor"),
    ActionSpec("reject_sentence", "&Reject sentence", "Alt+X", "Delete the model sentence at the cursor"),
    ActionSpec("accept_all", "Accept a&ll model text", "Ctrl+Shift+A", "Accept every model sentence"),
    ActionSpec("template", "Normal chest &template", "Ctrl+T", "Replace the text with the normal template"),
    ActionSpec("describe_region", "Describe a re&gion…", "Ctrl+B",
               "Draw a box; the model writes a sentence about it (also Shift+drag)"),
    ActionSpec("sign", "&Sign…", "Ctrl+Return", "Review the truthfulness flags and sign"),
    ActionSpec("addendum", "Add&endum…", "Ctrl+Alt+A", "Add a signed addendum to a signed report"),
    ActionSpec("export", "E&xport…", "Ctrl+E", "TXT, PDF, JSON, FHIR, DICOM SR, PNG"),
    ActionSpec("next_study", "&Next study", "Ctrl+N", "Open the next unsigned study of the worklist"),
    ActionSpec("shortcuts", "&Shortcuts", "F1", "This list"),
)

MOUSE_HELP: tuple[tuple[str, str], ...] = (
    ("Right-drag ←→", "Window width (right = wider)"),
    ("Right-drag ↑↓", "Window level (down = higher level, darker)"),
    ("Left- or middle-drag", "Pan"),
    ("Mouse wheel", "Zoom under the pointer"),
    ("Drop files/folder", "Open them"),
    ("Shift+left-drag", "Draw a box: the model describes that region"),
    ("Click a region box", "Jump to its sentence"),
    ("Tab after a macro name", "Expand the macro (e.g. nfd)"),
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
