"""RRG Desk ui layer."""
from rrg_desk.ui import qt_compat as _qt_compat

_qt_compat.install()  # before any signal is emitted: see qt_compat (PySide6 6.12 emit() refcount bug)
