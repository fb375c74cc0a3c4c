"""``gswarm service install|uninstall|status``: write the service files, run the service manager, keep a manifest.

Kinds: ``systemd-user`` (``~/.config/systemd/user/<name>.service``, ``systemctl --user``, plus ``loginctl
enable-linger`` so it survives logout and starts at boot), ``systemd-system`` (``/etc/systemd/system``, runs
as the invoking user), ``launchd`` (``~/Library/LaunchAgents/io.gswarm.<name>.plist``, ``launchctl``).
``target_dir`` (tests, or to inspect) writes every file and the manifest there and runs no command.

The manifest (JSON, 0600; ``~/.config/gswarm/service.json``, ``/etc/gswarm/service.json`` for system)
lists each file install wrote with its sha256: uninstall removes only those, and keeps (and names) a file
changed since. Install is idempotent: an unchanged file is not rewritten; a file at the unit's path that
the manifest does not list is refused (it is not ours). ``service.env`` (0600, secrets) and a starter
config file are created only when missing and never overwritten.

About 190 lines: planning, applying and undoing belong together.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gswarm.daemon import units
from gswarm.errors import ConfigError
from gswarm.paths import atomic_write

KINDS = ("systemd-user", "systemd-system", "launchd")
SECRET_ENV = ("GSWARM_HF_TOKEN", "GSWARM_API_TOKEN")
SYSTEM_MANIFEST = Path("/etc/gswarm/service.json")


def user_manifest() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("gswarm", appauthor=False)) / "service.json"


def find_manifest() -> dict[str, Any] | None:
    """The installed service's manifest (user first, then system), or None."""
    for path in (user_manifest(), SYSTEM_MANIFEST):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return {**data, "manifest": str(path)}
    return None


@dataclass
class Plan:
    """Files to write (``(path, data, mode, keep_existing)``), commands to run (argv lists), notes."""

    kind: str
    name: str
    unit_path: Path
    manifest_path: Path
    files: list[tuple[Path, bytes, int, bool]] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    run_commands: bool = True
    state_dir: str = ""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan_install(spec: units.UnitSpec, kind: str, target_dir: Path | None = None,
                 env: dict[str, str] | None = None, config_text: str | None = None) -> Plan:
    """What install does for ``spec``; ``config_text``: a starter config file to create when missing."""
    env = dict(os.environ if env is None else env)
    if kind not in KINDS:
        raise ConfigError(f"service kind {kind!r} is unknown; use one of {', '.join(KINDS)}")
    home = Path.home()
    if kind == "launchd":
        fname, default_dir = f"{spec.label}.plist", home / "Library" / "LaunchAgents"
        data = units.launchd_plist(spec)
    else:
        fname = f"{spec.name}.service"
        default_dir = Path("/etc/systemd/system") if kind == "systemd-system" else \
            Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "systemd" / "user"
        data = units.systemd_unit(spec).encode()
    unit_dir = Path(target_dir) if target_dir else default_dir
    manifest = (Path(target_dir) / "gswarm-service.json") if target_dir else \
        (SYSTEM_MANIFEST if kind == "systemd-system" else user_manifest())
    plan = Plan(kind, spec.name, unit_dir / fname, manifest, run_commands=target_dir is None, state_dir=str(spec.state_dir))
    plan.files.append((plan.unit_path, data, 0o644, False))
    if config_text is not None:
        plan.files.append((spec.config_file, config_text.encode(), 0o600, True))
    secrets = [f"{k}={env[k]}" for k in SECRET_ENV if env.get(k)]
    env_text = "# Secrets for the gswarm service (read by systemd; 0600). One NAME=value per line.\n" + "".join(s + "\n" for s in secrets)
    if kind != "launchd":
        plan.files.append((spec.state_dir / units.ENV_FILE, env_text.encode(), 0o600, True))
    else:
        plan.notes.append("launchd has no environment file: keep hf_token/api_token in the config file (chmod 600)")
    plan.commands, notes = _commands(kind, spec, plan.unit_path)
    plan.notes += notes
    return plan


def _commands(kind: str, spec: units.UnitSpec, unit_path: Path) -> tuple[list[list[str]], list[str]]:
    unit = unit_path.name
    if kind == "launchd":
        dom = f"gui/{os.getuid()}"
        return [["launchctl", "bootout", f"{dom}/{spec.label}"], ["launchctl", "bootstrap", dom, str(unit_path)]], [
            f"logs: {spec.state_dir / 'logs'}/service.*.log; stop: launchctl bootout {dom}/{spec.label}"]
    if kind == "systemd-system":
        return [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", unit]], [
            f"logs: journalctl -u {spec.name} -f; stop: sudo systemctl stop {spec.name} (or gswarm stop)"]
    user = getpass.getuser()
    cmds = [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", unit]]
    notes = [f"logs: journalctl --user -u {spec.name} -f; stop: systemctl --user stop {spec.name} (or gswarm stop)"]
    if not Path(f"/var/lib/systemd/linger/{user}").exists():
        cmds.append(["loginctl", "enable-linger", user])
        notes.append(f"a user service stops when {user} logs out and does not start at boot unless lingering is on: "
                     f"install runs `loginctl enable-linger {user}` (if refused, ask an admin to run it)")
    return cmds, notes


Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    if shutil.which(argv[0]) is None:
        return subprocess.CompletedProcess(argv, 127, "", f"{argv[0]} not found")
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def apply_install(plan: Plan, runner: Runner = _run) -> tuple[int, list[str]]:
    """Write the files (idempotent) and the manifest, run the commands. Returns (exit code, report lines).

    Raises ConfigError when a file at the unit's path was not written by install."""
    old = _read(plan.manifest_path)
    ours = {f["path"]: f for f in (old or {}).get("files", [])}
    lines: list[str] = []
    written: list[dict[str, str]] = []
    for path, data, mode, keep in plan.files:
        current = path.read_bytes() if path.is_file() else None
        if current is not None and str(path) not in ours and not keep:
            raise ConfigError(f"{path} exists and was not written by gswarm service install; move it away or "
                              f"pass another --name")
        if current == data or (keep and current is not None):
            lines.append(f"unchanged: {path}" if current == data else f"kept as it is: {path}")
            if str(path) in ours:
                written.append(ours[str(path)])
            continue
        atomic_write(path, data, mode)
        written.append({"path": str(path), "sha256": _sha(data)})
        lines.append(f"wrote: {path}")
    manifest = {"version": 1, "kind": plan.kind, "name": plan.name, "unit": str(plan.unit_path),
                "state_dir": plan.state_dir, "files": written, "installed_at": time.time()}
    atomic_write(plan.manifest_path, json.dumps(manifest, indent=2) + "\n", 0o600)
    lines.append(f"manifest: {plan.manifest_path}")
    rc = _run_all(plan.commands, plan.run_commands, runner, lines, ignore_first=plan.kind == "launchd")
    return rc, lines + plan.notes


def _run_all(cmds: list[list[str]], really: bool, runner: Runner, lines: list[str], ignore_first: bool = False) -> int:
    rc = 0
    for i, argv in enumerate(cmds):
        if not really:
            lines.append(f"not run (--target-dir): {' '.join(argv)}")
            continue
        res = runner(argv)
        if res.returncode and not (ignore_first and i == 0):
            rc = 1
            said = " ".join((res.stderr or res.stdout).split())[:300]
            lines.append(f"FAILED ({res.returncode}): {' '.join(argv)}: {said}")
            if "Failed to connect to bus" in said and "--user" in argv:
                lines.append("hint: systemctl --user needs the user's own systemd session: log in as that user over SSH "
                             "(not su/sudo -u), or install with sudo ... --system")
        else:
            lines.append(f"ran: {' '.join(argv)}")
    return rc


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def uninstall(manifest_path: Path, runner: Runner = _run, run_commands: bool = True,
              dry_run: bool = False) -> tuple[int, list[str]]:
    """Stop and disable the service, remove the files install wrote (unless changed since), then the manifest.
    ``dry_run``: run and remove nothing, only say what would be done (lines ``would run: …``/``would remove: …``).
    Returns (exit code 0/1, lines). Raises ConfigError when there is no manifest (nothing installed)."""
    m = _read(manifest_path)
    if m is None:
        raise ConfigError(f"no gswarm service is installed (no manifest at {manifest_path}); nothing to remove")
    name, kind, unit = m.get("name", "gswarm"), m.get("kind"), Path(m.get("unit", ""))
    if kind == "launchd":
        cmds = [["launchctl", "bootout", f"gui/{os.getuid()}/io.gswarm.{name}"]]
    else:
        user = ["--user"] if kind == "systemd-user" else []
        cmds = [["systemctl", *user, "disable", "--now", unit.name]]
    lines: list[str] = []
    reload_cmds = [] if kind == "launchd" else [["systemctl", *(["--user"] if kind == "systemd-user" else []), "daemon-reload"]]
    if dry_run:
        lines.append(f"# dry run: {kind} service {name!r}; nothing was changed")
        lines += [("would run: " if run_commands else "not run (--target-dir): ") + " ".join(a) for a in cmds]
    rc = 0 if dry_run else _run_all(cmds, run_commands, runner, lines)
    for f in m.get("files", []):
        p = Path(f["path"])
        if not p.is_file():
            lines.append(f"already gone: {p}")
        elif _sha(p.read_bytes()) != f.get("sha256"):
            lines.append(f"kept (changed since install): {p}")
        elif dry_run:
            lines.append(f"would remove: {p}")
        else:
            p.unlink()
            lines.append(f"removed: {p}")
    if dry_run:
        lines += [("would run: " if run_commands else "not run (--target-dir): ") + " ".join(a) for a in reload_cmds]
        lines.append(f"would remove: {manifest_path}")
        return 0, lines
    if reload_cmds:
        rc |= _run_all(reload_cmds, run_commands, runner, lines)
    Path(manifest_path).unlink()
    lines.append(f"removed: {manifest_path}")
    return rc, lines
