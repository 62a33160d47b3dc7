"""PACS passwords: the platform keychain when there is one, else memory for this session.

Passwords are never written to the settings file, the database or a log. A keychain that
stores secrets in a plain file (keyrings.alt's PlaintextKeyring) counts as no keychain.
"""
from __future__ import annotations

import logging

import keyring
import keyring.errors

from rrg_desk.pacs.client import PacsClient
from rrg_desk.pacs.errors import PacsSettingsError
from rrg_desk.pacs.settings import PacsServer

log = logging.getLogger(__name__)

KEYRING_SERVICE = "RRG Desk PACS"
_UNSAFE_BACKENDS = ("fail", "null", "plaintext", "uncrypted")


def keychain_available() -> bool:
    """Is a real (encrypting, OS-provided) keychain backend configured?"""
    try:
        backend = keyring.get_keyring()
    except Exception:  # keyring's backend discovery may fail in odd environments
        return False
    name = f"{type(backend).__module__}.{type(backend).__name__}".lower()
    if any(word in name for word in _UNSAFE_BACKENDS):
        return False
    try:
        return float(backend.priority) > 0
    except Exception:
        return False


class CredentialStore:
    """Looks up and remembers passwords per server (`PacsServer.credential_key`)."""

    def __init__(self, use_keychain: bool | None = None) -> None:
        self._session: dict[str, str] = {}
        self._use_keychain = keychain_available() if use_keychain is None else use_keychain

    @property
    def uses_keychain(self) -> bool:
        return self._use_keychain

    def password(self, server: PacsServer) -> str | None:
        """The password, or None: then the UI asks (and calls `remember`)."""
        if server.credential_key in self._session:
            return self._session[server.credential_key]
        if not self._use_keychain:
            return None
        try:
            found = keyring.get_password(KEYRING_SERVICE, server.credential_key)
        except keyring.errors.KeyringError as exc:
            log.warning("the keychain could not be read (%s); the password will be asked for", type(exc).__name__)
            return None
        if found is not None:
            self._session[server.credential_key] = found
        return found

    def remember(self, server: PacsServer, password: str, persist: bool = True) -> bool:
        """Keep the password for this session and, if asked and possible, in the keychain.

        Returns True when it went to the keychain (False: it will be asked again next session)."""
        self._session[server.credential_key] = password
        if not (persist and self._use_keychain):
            return False
        try:
            keyring.set_password(KEYRING_SERVICE, server.credential_key, password)
            return True
        except keyring.errors.KeyringError as exc:
            log.warning("the keychain refused the password (%s); kept for this session only", type(exc).__name__)
            return False


def client_for(server: PacsServer, credentials: CredentialStore) -> PacsClient:
    """A PacsClient with the server's password; PacsSettingsError when it must be asked first."""
    password = credentials.password(server) if server.username else ""
    if password is None:
        raise PacsSettingsError(f"Enter the password for {server.username} on PACS '{server.name}'.")
    return PacsClient(server, password)
