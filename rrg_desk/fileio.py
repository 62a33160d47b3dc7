"""Atomic file writes: the target holds the old content or the whole new one, never half a file.

Below all layers (like paths.py and errors.py) so settings, macros, exports, the PACS cache,
the CLI and the trainer write files one way. Failures are raised as the OSError they are;
each caller words them for its reader (a disk-full export and a settings file differ).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once at import: os.umask can only be read by setting it


@contextlib.contextmanager
def replacing(path: str | Path, shared: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block ends without an error it replaces
    `path` in one rename, otherwise it is removed and `path` is untouched.

    For writers that need a file name (Qt's PDF writer, pydicom, safetensors). The file is
    private to the user (reports and settings hold patient data) unless `shared`: model files
    the trainer writes keep the umask's permissions, so other accounts can load the bundle."""
    path = Path(path)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".part")
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        if shared:
            os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes, shared: bool = False) -> Path:
    path = Path(path)
    with replacing(path, shared) as tmp:
        tmp.write_bytes(data)
    return path


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8", newline: str | None = None,
                      shared: bool = False) -> Path:
    """`newline` as for open(): None translates "\\n" to the platform's, "" writes it as is."""
    path = Path(path)
    with replacing(path, shared) as tmp, open(tmp, "w", encoding=encoding, newline=newline) as out:
        out.write(text)
    return path
