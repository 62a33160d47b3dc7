from __future__ import annotations

import json

from rrg_desk.app.settings import AppSettings, os_login_name, settings_path
from rrg_desk.paths import default_bundle_dir


def test_defaults():
    settings = AppSettings()
    assert settings.theme == "dark" and settings.device == "auto" and settings.autosave_seconds == 2.0
    assert settings.bundle_dir == str(default_bundle_dir()) and settings.problems() == []


def test_save_load_round_trip_in_the_user_data_folder(isolated_user_data):
    settings = AppSettings(device="cpu", beam_size=4, auto_draft=False, theme="light", user_name="Dr A")
    path = settings.save()
    assert path == settings_path() and path.parent == isolated_user_data
    data = json.loads(path.read_text())  # readable by a person
    assert data["user_name"] == "Dr A" and data["beam_size"] == 4
    assert AppSettings.load() == settings


def test_missing_or_damaged_file_gives_defaults(tmp_path):
    assert AppSettings.load(tmp_path / "none.json") == AppSettings()
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    assert AppSettings.load(bad) == AppSettings()


def test_invalid_values_fall_back_one_by_one(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"device": "tpu", "beam_size": 40, "theme": "light", "auto_draft": "no",
                                "autosave_seconds": "fast", "user_name": 5, "unknown": 1}))
    settings = AppSettings.load(path)
    assert settings.device == "auto" and settings.beam_size == 0 and settings.autosave_seconds == 2.0
    assert settings.theme == "light" and settings.auto_draft is False and settings.user_name == os_login_name()


def test_identity_defaults_to_the_os_login_until_confirmed(tmp_path, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "jdoe")
    settings = AppSettings()
    assert settings.user_name == "jdoe" and settings.identity_confirmed is False
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"user_name": "   ", "identity_confirmed": True, "institution_name": "St Elsewhere"}))
    loaded = AppSettings.load(path)  # a blank name never survives: entries must carry someone
    assert loaded.user_name == "jdoe" and loaded.identity_confirmed and loaded.institution_name == "St Elsewhere"
    assert AppSettings(user_name=" ").problems() == ["User name must not be empty: audit entries and signatures "
                                                     "carry it."]


def test_os_login_name_never_empty(monkeypatch):
    def no_login():
        raise OSError("no login")
    monkeypatch.setattr("getpass.getuser", no_login)
    assert os_login_name() == "unknown user"


def test_problems_are_worded_for_the_dialog():
    problems = AppSettings(device="gpu", beam_size=9, theme="blue", autosave_seconds=0).problems()
    assert len(problems) == 4 and all(p.endswith(".") for p in problems)


def test_draft_settings():
    assert AppSettings(beam_size=2).draft_settings().beam_size == 2
