"""GSwarm's state directory and the files in it.

Default from platformdirs (``~/.local/state/gswarm`` on Linux); override with
``--state-dir`` / ``GSWARM_STATE_DIR``. Layout: ``gswarm.db`` (SQLite),
``logs/`` (captured node output, JSON event log), ``backups/`` (0700; login
files and identity), ``profiles/``, ``run/`` (locks and pid records).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import platformdirs


def state_dir(explicit: Path | None = None) -> Path:
    """The state directory, created with mode 0700 if missing."""
    path = Path(explicit) if explicit else Path(platformdirs.user_state_dir("gswarm", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path, 0o700)
    except OSError:
        pass
    return path


def subdir(base: Path, name: str, mode: int = 0o700) -> Path:
    """``base/name`` created with ``mode``."""
    p = base / name
    p.mkdir(parents=True, exist_ok=True)
    os.chmod(p, mode)
    return p


def atomic_write(path: Path, data: bytes | str, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder + ``os.replace``.

    The file gets permission ``mode`` before it becomes visible; an existing file is
    only replaced once the new content is fully on disk.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
