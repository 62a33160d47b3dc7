"""PACS server settings: a readable JSON list in the user data folder, never a password.

    servers = load_servers() ; save_servers(servers) ; PacsServer(name, url, username, ...)

Passwords live in the platform keychain or in memory for the session (credentials.py).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from urllib.parse import urlparse

from rrg_desk.fileio import write_text_atomic
from rrg_desk.pacs.errors import PacsSettingsError
from rrg_desk.paths import user_data_dir

log = logging.getLogger(__name__)

SERVERS_FILE_NAME = "pacs-servers.json"
DEFAULT_TIMEOUT_S = 30.0
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class PacsServer:
    """One DICOMweb endpoint, e.g. url="https://pacs.example.org/dicom-web"."""

    name: str
    url: str
    username: str = ""
    verify_tls: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem:
            raise PacsSettingsError(problem)

    def problem(self) -> str:
        """Why these settings cannot work ('' when they look usable)."""
        if not self.name.strip():
            return "Give the PACS server a name."
        parsed = urlparse(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            return f"The PACS address must start with http:// or https:// and name a host (got {self.url!r})."
        if parsed.username or parsed.password:
            return "Put the user name in its own field, not in the address (the address is stored in plain text)."
        if not (0 < self.timeout_s <= 3600):
            return "The timeout must be between 0 and 3600 seconds."
        return ""

    @property
    def credential_key(self) -> str:
        """Identifies the password in the keychain: the same user on another server differs."""
        return f"{self.username}@{self.url.rstrip('/')}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PacsServer":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}  # "password" or junk is dropped
        try:
            values["verify_tls"] = bool(values.get("verify_tls", True))
            values["timeout_s"] = float(values.get("timeout_s", DEFAULT_TIMEOUT_S))
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise PacsSettingsError(f"A PACS server entry is malformed: {exc}") from exc


def servers_path() -> Path:
    return user_data_dir() / SERVERS_FILE_NAME


def load_servers(path: Path | None = None) -> list[PacsServer]:
    """The configured servers; [] when none. Broken entries are skipped with a warning."""
    path = path or servers_path()
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PacsSettingsError(f"The PACS settings file {path} cannot be read ({exc}).") from exc
    servers = []
    for entry in data.get("servers", []) if isinstance(data, dict) else []:
        try:
            servers.append(PacsServer.from_dict(entry))
        except PacsSettingsError as exc:
            log.warning("skipping a PACS server entry in %s: %s", path, exc.user_message)
    return servers


def save_servers(servers: list[PacsServer], path: Path | None = None) -> Path:
    """Write atomically (a crash never leaves half a settings file). Names must be unique."""
    path = path or servers_path()
    names = [s.name for s in servers]
    if len(set(names)) != len(names):
        raise PacsSettingsError("Two PACS servers have the same name; names must differ.")
    text = json.dumps({"version": _FORMAT_VERSION, "servers": [s.to_dict() for s in servers]}, indent=2)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(path, text)
    except OSError as exc:
        raise PacsSettingsError(f"The PACS settings could not be saved to {path} ({exc.strerror or exc}).") from exc


def find_server(name: str, servers: list[PacsServer] | None = None) -> PacsServer:
    for server in servers if servers is not None else load_servers():
        if server.name == name:
            return server
    raise PacsSettingsError(f"No PACS server named {name!r} is configured.")


def report_server(preferred: str = "", servers: list[PacsServer] | None = None) -> PacsServer | None:
    """The server signed reports go to: the one named `preferred` (the app setting
    `pacs_server`), else the first configured; None when no PACS is configured.
    PacsSettingsError when `preferred` names a server that is not configured."""
    servers = servers if servers is not None else load_servers()
    if preferred.strip():
        return find_server(preferred.strip(), servers)
    return servers[0] if servers else None
