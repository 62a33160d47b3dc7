"""Report templates and the radiologist's text macros (a name expands to a phrase).

Macros live in a small JSON file ({name: text}) in the user data folder, so they survive
upgrades and can be edited by hand. A missing or damaged file falls back to the defaults.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from rrg_desk.fileio import write_text_atomic
from rrg_desk.errors import UserFacingError
from rrg_desk.paths import user_data_dir

log = logging.getLogger(__name__)

MACROS_FILE_NAME = "macros.json"
_MACRO_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class ReportTemplate:
    name: str
    findings: str
    impression: str


NORMAL_CHEST_TEMPLATE = ReportTemplate(
    name="Normal chest",
    findings=("The heart size is normal. The mediastinal contours are within normal limits. "
              "The lungs are clear. There is no pleural effusion or pneumothorax. "
              "No acute osseous abnormality."),
    impression="No acute cardiopulmonary abnormality.",
)

# Names are abbreviations, never English words: Tab after "heart" must not expand it.
DEFAULT_MACROS: dict[str, str] = {
    "nfd": "No acute cardiopulmonary abnormality.",
    "clr": "The lungs are clear.",
    "hrt": "The heart size is normal.",
    "med": "The mediastinal contours are within normal limits.",
    "noeff": "There is no pleural effusion or pneumothorax.",
    "bon": "No acute osseous abnormality.",
    "cmp": "Compared with the prior study, there is no significant interval change.",
}


class MacroError(UserFacingError, ValueError):
    """An invalid macro name or text; `user_message` is for the UI (still a ValueError)."""


class MacroStore:
    """{name: text} macros kept in a JSON file; names are case-insensitive."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else user_data_dir() / MACROS_FILE_NAME
        self._macros: dict[str, str] = dict(DEFAULT_MACROS)
        self.load()

    def load(self) -> None:
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("the file does not hold a {name: text} object")
        except (OSError, ValueError) as exc:
            log.warning("macros file %s unreadable (%s); using the defaults", self.path, exc)
            return
        self._macros = {str(k).lower(): str(v) for k, v in data.items() if _MACRO_NAME.match(str(k))}

    def save(self) -> None:
        """Write atomically (a crash mid-write never leaves a half file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps(self._macros, indent=2, sort_keys=True, ensure_ascii=False))

    def names(self) -> list[str]:
        return sorted(self._macros)

    def items(self) -> dict[str, str]:
        return dict(self._macros)

    def get(self, name: str) -> str | None:
        return self._macros.get(name.lower())

    def set(self, name: str, text: str) -> None:
        if not _MACRO_NAME.match(name):
            raise MacroError("A macro name is 1 to 32 letters, digits, dots, dashes or underscores.")
        if not text.strip():
            raise MacroError("A macro needs some text.")
        self._macros[name.lower()] = text.strip()

    def remove(self, name: str) -> None:
        self._macros.pop(name.lower(), None)
