"""GSwarm's state directory and the files in it.

Default from platformdirs (``~/.local/state/gswarm`` on Linux); override with
``--state-dir`` / ``GSWARM_STATE_DIR``. Layout: ``gswarm.db`` (SQLite),
``logs/`` (captured node output, JSON event log), ``backups/`` (0700; login
files and identity), ``profiles/``, ``run/`` (locks and pid records).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import platformdirs


_PASS_ANOTHER = "pass another --state-dir (or set GSWARM_STATE_DIR / state_dir in the config file)"


def state_dir(explicit: Path | None = None, *, writable: bool = True) -> Path:
    """The state directory, created with mode 0700 if missing.

    With ``writable`` (the default, for commands that write) a temp file is created and
    removed in it to prove it is writable. Without it (commands that only read: status, logs,
    report, bundle) a missing folder is returned as it is, not created: a mistyped
    ``--state-dir`` leaves nothing behind, and the readers report that nothing was recorded there.
    Raises :class:`gswarm.errors.ConfigError` naming the folder when it is a file, cannot be
    created, or (``writable``) is not writable.
    """
    from gswarm.errors import ConfigError

    path = Path(explicit) if explicit else Path(platformdirs.user_state_dir("gswarm", appauthor=False))
    if path.exists() and not path.is_dir():
        raise ConfigError(f"state directory {path} is a file; {_PASS_ANOTHER}")
    if not writable and not path.exists():
        ancestor = path.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if ancestor.is_dir():
            return path  # could be created: nothing recorded there yet
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"state directory {path} cannot be created ({exc.strerror or exc}); {_PASS_ANOTHER}") from None
    try:
        os.chmod(path, 0o700)
    except OSError:
        pass
    if writable:
        try:
            probe_writable(path)
        except OSError as exc:
            raise ConfigError(f"state directory {path} is not writable ({exc.strerror or exc}); {_PASS_ANOTHER}") from None
    return path


def probe_writable(folder: Path) -> None:
    """Create and remove a temp file in ``folder``; OSError when that fails (catches read-only mounts and
    permissions even for root, where a mode check would not)."""
    fd, probe = tempfile.mkstemp(prefix=".gswarm-probe.", dir=folder)
    os.close(fd)
    os.unlink(probe)


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


def gzip_file(path: Path, level: int = 6) -> Path:
    """Replace ``path`` by ``path.gz`` (gzip ``level``, 0600): written to ``path.gz.tmp`` and renamed, then
    ``path`` is removed. On any failure (a full disk) the plain file stays and no half ``.gz`` is left;
    the OSError is raised. Returns the ``.gz`` path.

    The compression runs in a thread of its own at the lowest CPU priority (:func:`yield_cpu`) and the
    caller waits for it: compressing a rotated log is background work that must never take a CPU from
    the node (issue #18: a flood rotates every few seconds, and gzip at normal priority on a 2-core
    machine slowed the node). The caller's own thread keeps its priority (it may be a shared worker)."""
    import threading

    out: list[Any] = []
    worker = threading.Thread(target=_gzip_worker, args=(Path(path), level, out), name="gswarm-gzip", daemon=True)
    worker.start()
    worker.join()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


def _gzip_worker(path: Path, level: int, out: list[Any]) -> None:
    try:
        yield_cpu()
        out.append(_gzip(path, level))
    except BaseException as exc:  # handed to the waiting caller
        out.append(exc)


def yield_cpu() -> bool:
    """Put the *calling thread* at the lowest CPU priority: Linux ``SCHED_IDLE`` (it runs only when a CPU
    would otherwise idle; no privilege needed), else nothing (other systems cannot lower one thread
    safely: ``setpriority`` takes a pid there). Returns True when the priority was lowered."""
    if not sys.platform.startswith("linux") or not hasattr(os, "SCHED_IDLE"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # pid 0 = this thread on Linux
    except OSError:
        return False
    return True


def _gzip(path: Path, level: int) -> Path:
    """The compression itself: ISA-L's gzip (PyPI ``isal``; about 4x zlib level 1's speed on node logs at
    the same size, output any gzip reader takes) when installed, else the standard library's; ``level``
    is cut to ISA-L's range 0-3."""
    import shutil

    try:
        from isal import igzip as gzip  # type: ignore[import-not-found]

        level = min(level, 3)
    except ImportError:  # pragma: no cover - a platform without an isal wheel
        import gzip  # type: ignore[no-redef]

    tmp, done = path.with_name(path.name + ".gz.tmp"), path.with_name(path.name + ".gz")
    try:
        with open(path, "rb") as src, os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as raw, \
                gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, compresslevel=level) as dst:  # isal: IGzipFile
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, done)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    path.unlink()
    return done
