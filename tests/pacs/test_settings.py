"""Server settings file, passwords (keychain or this session only), query building. No server."""
from __future__ import annotations

import json
from datetime import date

import keyring
import keyring.backends.fail
import pytest
from keyring.backend import KeyringBackend

from rrg_desk.pacs import CredentialStore, PacsServer, PacsSettingsError, client_for, load_servers, save_servers
from rrg_desk.pacs.client import date_range, name_pattern
from rrg_desk.pacs.credentials import keychain_available
from rrg_desk.pacs.settings import servers_path


class MemoryKeyring(KeyringBackend):
    """A stand-in for the OS keychain (the test machine has none).

    Backends register themselves for keyring's discovery, which instantiates them without
    arguments (skipping those that raise TypeError): the required `store` keeps this one
    from being picked by every later test."""

    priority = 10

    def __init__(self, store: dict) -> None:
        super().__init__()
        self.store = store

    def get_password(self, service, username):
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        self.store.pop((service, username), None)


@pytest.fixture
def memory_keyring():
    previous = keyring.get_keyring()
    backend = MemoryKeyring(store={})
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def no_keychain():
    """keyring's "fail" backend, what a machine without a keychain service gets (and never
    the developer's real keychain, whatever this machine has)."""
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(previous)


def test_servers_round_trip_without_passwords():
    servers = [PacsServer("main", "https://pacs.example.org/dicom-web", "alice"),
               PacsServer("test", "http://127.0.0.1:8042/dicom-web", "", verify_tls=False, timeout_s=5)]
    path = save_servers(servers)
    assert path == servers_path() and load_servers() == servers
    # a password smuggled into the file by hand is ignored, and never written back
    data = json.loads(path.read_text())
    data["servers"][0]["password"] = "hunter2"
    path.write_text(json.dumps(data))
    save_servers(load_servers())
    assert "hunter2" not in path.read_text()
    assert load_servers()[0].verify_tls is True  # TLS verification is the default


@pytest.mark.parametrize("url, problem", [("ftp://pacs/dicom-web", "http"), ("pacs.example.org", "http"),
                                          ("https://bob:pw@pacs.example.org", "user name")])
def test_unusable_urls_are_refused_with_a_reason(url, problem):
    with pytest.raises(PacsSettingsError) as caught:
        PacsServer("x", url, "bob")
    assert problem in caught.value.user_message


def test_duplicate_names_are_refused():
    with pytest.raises(PacsSettingsError):
        save_servers([PacsServer("a", "http://h/dicom-web"), PacsServer("a", "http://g/dicom-web")])


def test_without_a_keychain_the_password_lives_for_this_session_only(no_keychain):
    assert not keychain_available()
    server = PacsServer("main", "https://pacs.example.org/dicom-web", "alice")
    first = CredentialStore()
    assert first.password(server) is None
    with pytest.raises(PacsSettingsError, match="password"):
        client_for(server, first)
    assert first.remember(server, "pw-1") is False  # not persisted
    assert first.password(server) == "pw-1"
    assert CredentialStore().password(server) is None  # next session asks again


def test_with_a_keychain_the_password_is_kept_there(memory_keyring):
    server = PacsServer("main", "https://pacs.example.org/dicom-web", "alice")
    other = PacsServer("other", "https://other.example.org/dicom-web", "alice")
    store = CredentialStore()
    assert store.uses_keychain
    assert store.remember(server, "pw-2") is True
    assert CredentialStore().password(server) == "pw-2"
    assert CredentialStore().password(other) is None  # same user, other server: another secret


def test_query_text_becomes_dicom_matching_values():
    assert name_pattern("doe jane") == "doe*jane*"
    assert name_pattern(" DOE^JANE ") == "DOE*JANE*"
    assert name_pattern("Doe, J") == "Doe*J*"
    assert name_pattern("   ") == ""
    assert date_range(date(2024, 1, 2), date(2024, 3, 4)) == "20240102-20240304"
    assert date_range(date(2024, 1, 2), None) == "20240102-"
    assert date_range(None, date(2024, 3, 4)) == "-20240304"
    assert date_range(date(2024, 1, 2), date(2024, 1, 2)) == "20240102"
    assert date_range(None, None) == ""
