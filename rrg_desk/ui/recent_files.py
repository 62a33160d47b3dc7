"""Recently opened files and folders, newest first, kept in QSettings."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

SETTINGS_KEY = "recent/paths"
MAX_RECENT = 10


class RecentFiles(QObject):
    changed = Signal()

    def __init__(self, settings: QSettings, limit: int = MAX_RECENT, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._limit = limit

    def paths(self) -> list[str]:
        value = self._settings.value(SETTINGS_KEY, [])
        if isinstance(value, str):  # INI files return a lone entry as a plain string
            value = [value]
        return [str(item) for item in (value or [])]

    def add(self, path: str | Path) -> None:
        entry = str(Path(path).resolve())
        entries = [entry] + [p for p in self.paths() if p != entry]
        self._store(entries[: self._limit])

    def clear(self) -> None:
        self._store([])

    def _store(self, entries: list[str]) -> None:
        self._settings.setValue(SETTINGS_KEY, entries)
        self._settings.sync()
        self.changed.emit()


class RecentFilesMenu(QMenu):
    """File ▸ Open recent; emits the chosen path."""

    pathChosen = Signal(str)

    def __init__(self, recent: RecentFiles, parent=None) -> None:
        super().__init__("Open &recent", parent)
        self._recent = recent
        recent.changed.connect(self.rebuild)
        self.rebuild()

    def rebuild(self) -> None:
        self.clear()
        paths = self._recent.paths()
        for index, path in enumerate(paths, start=1):
            action = QAction(f"&{index % 10} {path}" if index <= 10 else path, self)
            action.setData(path)
            action.triggered.connect(lambda _checked=False, p=path: self.pathChosen.emit(p))
            self.addAction(action)
        if paths:
            self.addSeparator()
            self.addAction("Clear list", self._recent.clear)
        self.setEnabled(bool(paths))
