"""The workstation's settings: a dataclass saved as a readable JSON file in the user data
folder (the UI mirrors it to QSettings). Unknown keys are ignored and invalid values fall
back to their defaults, so a hand-edited file never stops the app from starting."""
from __future__ import annotations

import getpass
import json
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from rrg_desk.fileio import write_text_atomic
from rrg_desk.inference.request import DraftSettings
from rrg_desk.paths import default_bundle_dir, user_data_dir

log = logging.getLogger(__name__)

SETTINGS_FILE_NAME = "settings.json"
DEVICES = ("auto", "cpu", "cuda")
THEMES = ("dark", "light")
BEAM_SIZES = range(0, 9)  # 0 = the model bundle's own (as `rrg-desk draft` without --beam-size)


def settings_path() -> Path:
    return user_data_dir() / SETTINGS_FILE_NAME


def os_login_name() -> str:
    """The operating system's login name: the identity until the radiologist confirms theirs."""
    try:
        name = getpass.getuser().strip()
    except (KeyError, OSError, ImportError):  # no passwd entry / no login variables (containers)
        name = ""
    return name or "unknown user"


@dataclass
class AppSettings:
    bundle_dir: str = field(default_factory=lambda: str(default_bundle_dir()))
    device: str = "auto"  # auto | cpu | cuda
    beam_size: int = 0  # 0: the bundle card's, so the workstation drafts the text `rrg-desk draft` does
    auto_draft: bool = True  # draft when a study without a draft is opened
    theme: str = "dark"  # dark | light
    # who acts: every audit entry and every signature carries it; never empty (the OS login
    # name until the radiologist confirms or changes it once, at the first start)
    user_name: str = field(default_factory=os_login_name)
    identity_confirmed: bool = False
    autosave_seconds: float = 2.0
    institution_name: str = ""  # printed report header (PDF)
    institution_address: str = ""
    # PACS (docs/pacs.md): signing and signing an addendum store the SR on the PACS (through
    # the outbox: queued and retried while the server is down); off = only on request
    pacs_auto_send: bool = True
    pacs_server: str = ""  # the pacs-servers.json entry reports go to; "" = the first configured

    def problems(self) -> list[str]:
        """What is wrong with the values, in words for the settings dialog (empty when valid)."""
        found = []
        if self.device not in DEVICES:
            found.append(f"Device must be one of {', '.join(DEVICES)}.")
        if self.theme not in THEMES:
            found.append(f"Theme must be one of {', '.join(THEMES)}.")
        if self.beam_size not in BEAM_SIZES:
            found.append(f"Beam size must be between 1 and {BEAM_SIZES.stop - 1}, or the model's default.")
        if not self.user_name.strip():
            found.append("User name must not be empty: audit entries and signatures carry it.")
        if not (0.2 <= self.autosave_seconds <= 60):
            found.append("Autosave delay must be between 0.2 and 60 seconds.")
        return found

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AppSettings":
        """Known keys of the right type; anything else keeps its default (and is logged)."""
        defaults = cls()
        values = {}
        for spec in fields(cls):
            if spec.name not in data:
                continue
            raw, default = data[spec.name], getattr(defaults, spec.name)
            try:
                value = _coerce(raw, type(default))
            except (TypeError, ValueError):
                log.warning("setting %s=%r ignored (expected %s)", spec.name, raw, type(default).__name__)
                continue
            values[spec.name] = value
        settings = cls(**values)
        for spec in fields(cls):  # one bad value must not reset the others
            probe = cls(**{spec.name: getattr(settings, spec.name)})
            if probe.problems():
                log.warning("setting %s=%r invalid; using the default", spec.name, getattr(settings, spec.name))
                setattr(settings, spec.name, getattr(defaults, spec.name))
        return settings

    @classmethod
    def load(cls, path: str | Path | None = None) -> "AppSettings":
        path = Path(path) if path is not None else settings_path()
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            log.warning("settings file %s unreadable (%s); using defaults", path, exc)
            return cls()
        return cls.from_dict(data)

    def save(self, path: str | Path | None = None) -> Path:
        """Write atomically, pretty-printed so a person can read and edit it."""
        path = Path(path) if path is not None else settings_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    def draft_settings(self, draft_anyway: bool = False) -> DraftSettings:
        """The draft request these choices imply (beam size 0: the bundle card's)."""
        return DraftSettings(beam_size=self.beam_size or None, draft_anyway=draft_anyway)


def _coerce(raw, kind: type):
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false", "1", "0", "yes", "no"):
            return raw.lower() in ("true", "1", "yes")
        raise TypeError("not a boolean")
    if kind is int:
        if isinstance(raw, bool) or not isinstance(raw, (int, str)) or int(raw) != float(raw):
            raise TypeError("not an integer")
        return int(raw)
    if kind is float:
        if isinstance(raw, bool):
            raise TypeError("not a number")
        return float(raw)
    if kind is str:
        if not isinstance(raw, str):
            raise TypeError("not a string")
        return raw
    raise TypeError(f"unsupported setting type {kind}")
