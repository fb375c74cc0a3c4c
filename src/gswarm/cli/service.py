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


UserOpt = typer.Option(False, "--user", help="systemd user service (default on Linux).")
SystemOpt = typer.Option(False, "--system", help="systemd system service (needs root; runs as the invoking user).")
LaunchdOpt = typer.Option(False, "--launchd", help="launchd agent plist (default on macOS).")


def _manifest_path(user: bool, system: bool, launchd: bool) -> Path:
    """Where install wrote the manifest for the scope these flags name (the same flags as install)."""
    from gswarm.daemon import install as inst

    return inst.SYSTEM_MANIFEST if _kind(user, system, launchd) == "systemd-system" else inst.user_manifest()


def _kind(user: bool, system: bool, launchd: bool) -> str:
    if sum((user, system, launchd)) > 1:
        raise ConfigError("options --user, --system and --launchd exclude each other; pick one")
    if launchd or (platform.system() == "Darwin" and not system):
        return "launchd"
    return "systemd-system" if system else "systemd-user"


def install(
    user: bool = UserOpt, system: bool = SystemOpt, launchd: bool = LaunchdOpt,
    config_file: Optional[Path] = ConfigFile, state_dir: Optional[Path] = StateDir, rl_swarm_dir: Optional[Path] = RlSwarmDir,
    name: str = typer.Option("gswarm", "--name", help="Service name (unit <name>.service)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the files and commands; change nothing."),
    target_dir: Optional[Path] = typer.Option(None, "--target-dir", help="Write the files here and run no command (to inspect)."),
    not_a_checkout: bool = typer.Option(False, "--not-a-checkout", help="Install even though rl_swarm_dir is not an "
                                        "RL Swarm checkout (yet); the service fails until it is one."),
) -> None:
    """Install GSwarm as a service that starts at boot, survives logout and restarts after a failure.

    Refuses (exit 2) when the node's folder (``rl_swarm_dir``: --rl-swarm-dir, profile, config file, else the
    current folder) is not an RL Swarm checkout, naming where the folder came from; ``--not-a-checkout`` overrides."""
    from gswarm.daemon import install as inst, units

    kind = _kind(user, system, launchd)
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"option --name: {name!r} may hold only letters, digits, '-' and '_'")
    settings = settings_from(config_file=config_file, state_dir=state_dir, rl_swarm_dir=rl_swarm_dir)
    sdir = state_dir_of(settings).absolute()
    workdir = Path(settings.rl_swarm_dir).expanduser().resolve()
    if not not_a_checkout:
        _check_checkout(settings, workdir)
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


def _check_checkout(settings, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    """ConfigError when ``workdir`` is not an RL Swarm checkout, naming where rl_swarm_dir came from."""
    from gswarm.config.settings import source_of
    from gswarm.errors import CheckoutError
    from gswarm.rlswarm.generations import detect

    try:
        detect(workdir)
    except CheckoutError:
        src = source_of(settings, "rl_swarm_dir")
        where = "the current folder (no --rl-swarm-dir, profile or config file set one)" if src == "default" else f"from {src}"
        raise ConfigError(f"option rl_swarm_dir: {workdir} ({where}) is not an RL Swarm checkout, so the service would "
                          "fail at every start; pass --rl-swarm-dir with your clone of gensyn-ai/rl-swarm or cd into it"
                          + ("" if src in ("default", "--rl-swarm-dir") else f" (or correct it in {src})")
                          + "; --not-a-checkout installs anyway") from None


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
    user: bool = UserOpt, system: bool = SystemOpt, launchd: bool = LaunchdOpt,
    target_dir: Optional[Path] = typer.Option(None, "--target-dir", help="Uninstall what --target-dir installed (runs no command)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the commands and files; change nothing."),
) -> None:
    """Stop and disable the service; remove only the files install wrote (kept when changed since)."""
    from gswarm.daemon import install as inst

    manifest = (target_dir / "gswarm-service.json") if target_dir else _manifest_path(user, system, launchd)
    rc, lines = inst.uninstall(manifest, run_commands=target_dir is None, dry_run=dry_run)
    for line in lines:
        typer.echo(line)
    if rc:
        raise typer.Exit(1)


def status(
    user: bool = UserOpt, system: bool = SystemOpt, launchd: bool = LaunchdOpt,
    target_dir: Optional[Path] = typer.Option(None, "--target-dir", help="Read the manifest --target-dir wrote."),
) -> None:
    """Which service is installed, whether its files are intact, and whether its supervisor answers.
    Without a scope flag: the user service, else the system one."""
    import json

    from gswarm.daemon import install as inst
    from gswarm.daemon.client import NotRunning, request

    if target_dir:
        m = json.loads((target_dir / "gswarm-service.json").read_text())
    elif user or system or launchd:
        m = inst._read(_manifest_path(user, system, launchd))
    else:
        m = inst.find_manifest()
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
