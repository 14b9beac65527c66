"""Atomic file writing: a temporary name in the target folder, renamed when complete.

Every file the pipeline writes goes through :func:`atomic_path`, so a job
killed mid-write leaves at most a hidden ``.<name>.<random>.part<suffix>``
file, never one that looks finished.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "write_text", "public_mode"]


def public_mode() -> int:
    """File mode of a normally created file under the current umask (e.g. 0o644)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path):
    """Yield a temporary path to write; it replaces ``path`` if the block succeeds.

    The temporary name keeps ``path``'s suffix, so writers that infer the
    format from it (matplotlib, Pillow) work.  The folder is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, public_mode())        # mkstemp makes owner-only files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text) -> Path:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
