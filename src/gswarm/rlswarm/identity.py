"""Login files and node identity kept across restarts (generations.md §2.2, §2.4, §2.5).

``run_rl_swarm.sh`` deletes ``modal-login/temp-data/*.json`` on every exit (v0.3.1+), so
GSwarm keeps byte-exact copies in ``<state_dir>/backups/<checkout-key>/`` (dir 0700,
files 0600, atomic writes) and puts them back before a start that finds them missing.
Only the fields GSwarm needs are read: the first key of ``userData.json`` (ORG_ID) and the
``activated`` flag of the last key in ``userApiKey.json`` — never ``privateKey``, which
only ever lands in the 0600 backup copy.

``swarm.pem`` (``IDENTITY_PATH``, default ``<checkout>/swarm.pem``) is backed up the first
time it exists. Missing file + backup → restored (hivemind would otherwise silently
generate a new peer id). Different file than the backup → :class:`IdentityError`.
A second node with the same identity on this host → :class:`IdentityError` (flock on a
per-identity lock file keyed by the PEM's SHA-256).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gswarm.errors import LoginError
from gswarm.paths import atomic_write, subdir

LOGIN_FILES = ("userData.json", "userApiKey.json")


class IdentityError(LoginError):
    """swarm.pem differs from its backup, or the identity is in use by another node (exit 4)."""


def checkout_key(checkout: Path) -> str:
    """16 hex chars of SHA-256 of the checkout's resolved path (names its backup folder)."""
    return hashlib.sha256(str(Path(checkout).resolve()).encode()).hexdigest()[:16]


def backup_dir(state_dir: Path, checkout: Path) -> Path:
    """``<state_dir>/backups/<checkout-key>/`` created 0700 (and ``backups/`` 0700)."""
    return subdir(subdir(Path(state_dir), "backups"), checkout_key(checkout))


def temp_data(checkout: Path) -> Path:
    """``<checkout>/modal-login/temp-data`` (where the modal server writes the login files, §2.4)."""
    return Path(checkout) / "modal-login" / "temp-data"


def read_org_id(path: Path) -> str:
    """ORG_ID = first key of the top-level object of ``userData.json`` (as the script's awk).

    Raises LoginError naming the file when it is missing, empty, not UTF-8, not JSON, not an object or
    has no keys; the file is left untouched.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LoginError(f"{path} cannot be read ({exc.strerror}); log in again at the modal-login page") from None
    except UnicodeDecodeError as exc:  # binary garbage: same answer as for any other non-JSON content
        text, what = None, f"not valid JSON (not UTF-8 text: bad byte at offset {exc.start})"
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not data or not str(next(iter(data))).strip():
        if text is not None:
            what = "empty" if not text.strip() else "not a JSON object with the user's ORG_ID as first key"
        raise LoginError(f"{path} is {what}; log in again at the modal-login page "
                         "(http://localhost:3000) so it is written anew (the file was left in place)")
    return str(next(iter(data)))


def key_activated(path: Path, org_id: str) -> bool:
    """True when the last API key of ``org_id`` in ``userApiKey.json`` has ``activated: true``.

    Reads only that flag. Missing/malformed file → False.
    """
    try:
        keys = json.loads(Path(path).read_text(encoding="utf-8")).get(org_id)
        return bool(isinstance(keys, list) and keys and isinstance(keys[-1], dict) and keys[-1].get("activated") is True)
    except (OSError, ValueError, AttributeError):
        return False


def backup_login_files(checkout: Path, state_dir: Path) -> Path:
    """Copy both login files (0600) into the backup folder once the key is activated.

    Returns the folder. Raises LoginError when userData.json is malformed or the key is
    not activated (so an unusable login never replaces a good backup).
    """
    src = temp_data(checkout)
    org = read_org_id(src / "userData.json")
    if not key_activated(src / "userApiKey.json", org):
        raise LoginError(f"{src / 'userApiKey.json'} has no activated key for ORG_ID {org}; finish the login in the browser")
    dest = backup_dir(state_dir, checkout)
    for name in LOGIN_FILES:
        atomic_write(dest / name, (src / name).read_bytes(), mode=0o600)
    return dest


def restore_login_files(checkout: Path, state_dir: Path) -> list[str]:
    """Put back each login file that is missing in ``temp-data`` from the backup (0600).

    Files present are left alone (a newer login wins). Returns the names restored.
    """
    src, dest = backup_dir(state_dir, checkout), temp_data(checkout)
    restored = []
    for name in LOGIN_FILES:
        if not (dest / name).exists() and (src / name).is_file():
            atomic_write(dest / name, (src / name).read_bytes(), mode=0o600)
            restored.append(name)
    return restored


def keep_login(checkout: Path, state_dir: Path) -> list[str]:
    """Repair, restore and back up the login files; returns what was done as sentences (may be empty).

    Called before every start of the script or the node and whenever a login is seen (the trainer of a
    script run started), in every mode: (1) a ``userData.json`` that is corrupt (not a JSON object with
    the ORG_ID as first key) while the backup is valid is replaced, with ``userApiKey.json``, by the
    backup; (2) missing files are restored; (3) a valid, activated login is copied into the backup (0600)
    when it differs from it. Never raises LoginError (an unusable login is simply not backed up);
    OSError propagates.
    """
    temp, bdir = temp_data(checkout), backup_dir(state_dir, checkout)
    user, notes = temp / "userData.json", []
    if user.exists() and backed_up_org_id(checkout, state_dir):
        try:
            read_org_id(user)
        except LoginError as exc:
            for name in LOGIN_FILES:
                atomic_write(temp / name, (bdir / name).read_bytes(), mode=0o600)
            notes.append(f"restored the login files from the backup: {str(exc).split(';')[0]}")
    notes += [f"restored {name} from backup" for name in restore_login_files(checkout, state_dir)]
    before = [(bdir / n).read_bytes() if (bdir / n).is_file() else None for n in LOGIN_FILES]
    try:
        backup_login_files(checkout, state_dir)
    except LoginError:
        return notes
    if before != [(bdir / n).read_bytes() for n in LOGIN_FILES]:
        notes.append(f"login files backed up to {bdir} (0600)")
    return notes


def backed_up_org_id(checkout: Path, state_dir: Path) -> str | None:
    """ORG_ID of the backed-up login when it is complete and activated, else None."""
    src = backup_dir(state_dir, checkout)
    try:
        org = read_org_id(src / "userData.json")
    except LoginError:
        return None
    return org if key_activated(src / "userApiKey.json", org) else None


@dataclass(frozen=True)
class IdentityStatus:
    """What :func:`guard_identity` did: ``action`` is "backed_up", "restored", "kept" or "absent"."""

    pem: Path
    backup: Path
    action: str


def guard_identity(checkout: Path, state_dir: Path, pem: Path | None = None) -> IdentityStatus:
    """Back up, restore or verify ``swarm.pem`` before a start (see module docstring).

    Raises IdentityError (exit 4) when the PEM differs from the backup; nothing is deleted.
    """
    pem = Path(pem) if pem else Path(checkout) / "swarm.pem"
    backup = backup_dir(state_dir, checkout) / "swarm.pem"
    if pem.is_file():
        if not backup.is_file():
            atomic_write(backup, pem.read_bytes(), mode=0o600)
            return IdentityStatus(pem, backup, "backed_up")
        if pem.read_bytes() != backup.read_bytes():
            raise IdentityError(
                f"{pem} is a different identity than the backup {backup}: starting would change the node's peer id. "
                f"Put the backed-up file back (cp {backup} {pem}) or, to adopt the new identity on purpose, "
                f"move the backup away; neither file was changed")
        return IdentityStatus(pem, backup, "kept")
    if backup.is_file():
        atomic_write(pem, backup.read_bytes(), mode=0o600)
        return IdentityStatus(pem, backup, "restored")
    return IdentityStatus(pem, backup, "absent")


def default_lock_dir() -> Path:
    """Host-wide lock folder: ``$XDG_RUNTIME_DIR/gswarm`` or ``<tmp>/gswarm-<uid>`` (0700)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base) / "gswarm" if base and os.path.isdir(base) else Path(tempfile.gettempdir()) / f"gswarm-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


class IdentityLock:
    """An exclusive flock for one identity on this host (held while the node runs).

    Key: SHA-256 of the PEM bytes, or of its path while it does not exist yet. ``acquire``
    raises IdentityError naming the holder (node, pid, checkout) when taken; ``release``
    is idempotent. The kernel drops the lock when the holder dies.
    """

    def __init__(self, pem: Path, node: str = "default", lock_dir: Path | None = None) -> None:
        pem = Path(pem)
        raw = pem.read_bytes() if pem.is_file() else str(pem.resolve()).encode()
        self.key = hashlib.sha256(raw).hexdigest()[:24]
        self.path = (lock_dir or default_lock_dir()) / f"identity-{self.key}.lock"
        self.pem, self.node, self._fd = pem, node, None

    def acquire(self) -> None:
        """Take the lock (non-blocking) and record node/pid in it; IdentityError when held."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise IdentityError(f"identity {self.pem} is already used by another node on this host ({holder}); "
                                "two nodes with one swarm.pem fail with 'already taken by another peer'. "
                                "Stop the other node or give this one its own identity_path") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"node": self.node, "pid": os.getpid(), "pem": str(self.pem)}).encode())
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
