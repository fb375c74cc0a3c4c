"""``gswarm service install|uninstall|status``: run GSwarm as a systemd user/system service or a launchd agent.

See :mod:`gswarm.daemon.install` for the files, commands and manifest, and :mod:`gswarm.daemon.units`
for every choice in the unit.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Optional

import typer

from gswarm.cli._common import ConfigFile, RlSwarmDir, StateDir, settings_from, state_dir_of
from gswarm.errors import ConfigError

STARTER = """# gswarm configuration written by `gswarm service install` (options: `gswarm options`).
rl_swarm_dir = {rl!r}
node_name = {node!r}
"""


def _kind(user: bool, system: bool, launchd: bool) -> str:
    if sum((user, system, launchd)) > 1:
        raise ConfigError("options --user, --system and --launchd exclude each other; pick one")
    if launchd or (platform.system() == "Darwin" and not system):
        return "launchd"
    return "systemd-system" if system else "systemd-user"


def install(
    user: bool = typer.Option(False, "--user", help="systemd user service (default on Linux)."),
    system: bool = typer.Option(False, "--system", help="systemd system service (needs root; runs as the invoking user)."),
    launchd: bool = typer.Option(False, "--launchd", help="launchd agent plist (default on macOS)."),
    config_file: Optional[Path] = ConfigFile, state_dir: Optional[Path] = StateDir, rl_swarm_dir: Optional[Path] = RlSwarmDir,
    name: str = typer.Option("gswarm", "--name", help="Service name (unit <name>.service)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the files and commands; change nothing."),
    target_dir: Optional[Path] = typer.Option(None, "--target-dir", help="Write the files here and run no command (to inspect)."),
) -> None:
    """Install GSwarm as a service that starts at boot, survives logout and restarts after a failure."""
    from gswarm.daemon import install as inst, units

    kind = _kind(user, system, launchd)
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"option --name: {name!r} may hold only letters, digits, '-' and '_'")
    settings = settings_from(config_file=config_file, state_dir=state_dir, rl_swarm_dir=rl_swarm_dir)
    sdir = state_dir_of(settings).absolute()
    workdir = Path(settings.rl_swarm_dir).expanduser().resolve()
    cfg = settings.config_file
    starter = None
    if cfg is None:
        cfg = sdir / "gswarm.toml"
        starter = STARTER.format(rl=str(workdir), node=settings.node_name)
    cfg = Path(cfg).expanduser().absolute()
    login_user = os.environ.get("SUDO_USER") or None
    if kind == "systemd-system" and login_user is None:
        import getpass

        login_user = getpass.getuser()
    spec = units.UnitSpec(name, units.default_python(), sdir, cfg, workdir, settings.stop_timeout,
                          system=kind == "systemd-system", user=login_user)
    plan = inst.plan_install(spec, kind, target_dir, config_text=starter)
    if dry_run:
        _print_plan(plan)
        return
    if kind == "systemd-system" and target_dir is None and os.geteuid() != 0:
        raise ConfigError("--system writes /etc/systemd/system: run it with sudo (or use --user)")
    rc, lines = inst.apply_install(plan)
    for line in lines:
        typer.echo(line)
    if rc:
        typer.echo("some commands failed (see above); the files are in place — fix the cause and run install again", err=True)
        raise typer.Exit(1)


def _print_plan(plan) -> None:  # type: ignore[no-untyped-def]
    typer.echo(f"# dry run: {plan.kind} service {plan.name!r}; nothing was changed")
    for path, data, mode, keep in plan.files:
        extra = " (created only when missing)" if keep else ""
        typer.echo(f"\n# file {path} (mode {mode:o}){extra}:")
        if path.name == "service.env":
            n = data.decode().count("\n") - 1
            typer.echo(f"# {n} secret(s) from the environment (GSWARM_HF_TOKEN, GSWARM_API_TOKEN); values not shown")
        else:
            typer.echo(data.decode(errors="replace"), nl=False)
    typer.echo(f"\n# manifest {plan.manifest_path}")
    for argv in plan.commands:
        typer.echo(("would run: " if plan.run_commands else "not run (--target-dir): ") + " ".join(argv))
    for note in plan.notes:
        typer.echo(f"note: {note}")


def uninstall(
    target_dir: Optional[Path] = typer.Option(None, "--target-dir", help="Uninstall what --target-dir installed (runs no command)."),
    system: bool = typer.Option(False, "--system", help="The system service."),
) -> None:
    """Stop and disable the service; remove only the files install wrote (kept when changed since)."""
    from gswarm.daemon import install as inst

    manifest = (target_dir / "gswarm-service.json") if target_dir else (inst.SYSTEM_MANIFEST if system else inst.user_manifest())
    rc, lines = inst.uninstall(manifest, run_commands=target_dir is None)
    for line in lines:
        typer.echo(line)
    if rc:
        raise typer.Exit(1)


def status(
    target_dir: Optional[Path] = typer.Option(None, "--target-dir", help="Read the manifest --target-dir wrote."),
) -> None:
    """Which service is installed, whether its files are intact, and whether its supervisor answers."""
    import json

    from gswarm.daemon import install as inst
    from gswarm.daemon.client import NotRunning, request

    m = json.loads((target_dir / "gswarm-service.json").read_text()) if target_dir else inst.find_manifest()
    if not m:
        typer.echo("no gswarm service installed (`gswarm service install` installs one)")
        raise typer.Exit(1)
    typer.echo(f"{m['kind']} service {m['name']!r}: unit {m['unit']}; state dir {m['state_dir']}")
    for f in m.get("files", []):
        p = Path(f["path"])
        typer.echo(f"  {'present' if p.is_file() else 'MISSING'}: {p}")
    try:
        ans = request(Path(m["state_dir"]), "status")
        typer.echo(f"supervisor running (pid {ans.get('pid_gswarm')}): node {ans.get('node')} is {ans.get('state')}")
    except NotRunning:
        how = f"systemctl --user start {m['name']}" if m["kind"] == "systemd-user" else (
            f"sudo systemctl start {m['name']}" if m["kind"] == "systemd-system" else f"launchctl kickstart gui/{os.getuid()}/io.gswarm.{m['name']}")
        typer.echo(f"supervisor not running; start it with `{how}`")
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    """Add ``gswarm service install|uninstall|status`` to ``app``."""
    svc = typer.Typer(help="Run GSwarm as a service (systemd, launchd): install, uninstall, status.", no_args_is_help=True)
    svc.command("install")(install)
    svc.command("uninstall")(uninstall)
    svc.command("status")(status)
    app.add_typer(svc, name="service")
