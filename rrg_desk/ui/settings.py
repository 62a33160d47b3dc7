"""The app's QSettings: an INI file in the user data folder (tests point it at tmp_path)."""
from __future__ import annotations

from PySide6.QtCore import QSettings

from rrg_desk.paths import user_data_dir

SETTINGS_FILE_NAME = "settings.ini"


def open_settings() -> QSettings:
    return QSettings(str(user_data_dir() / SETTINGS_FILE_NAME), QSettings.Format.IniFormat)
