"""``gswarm run``: supervise one RL Swarm node (or the built-in emulated one with ``--emulated``), or every
node of ``[[nodes]]`` tables in ``--config-file`` / ``--emulated --nodes N`` in one host (issue #15).

Precedence: flags > ``GSWARM_*`` env > API override > TOML (``--config-file``) > profile (``--profile``)
> defaults; only flags actually given are passed on. Seconds flags take durations (``90s``, ``1h30m``). Exit code 0 after a requested stop or
``--duration``; NodeFatal's (6) after FATAL or a stop-and-alert cause; LockError's
(3) when another ``gswarm run`` supervises the checkout. ``--emulated`` without ``--state-dir`` /
``GSWARM_STATE_DIR`` keeps its state in a new temporary folder (printed at the end), never in the
operator's real state directory.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional

import typer

from gswarm.errors import ConfigError


def _me() -> str:
    """How to call this gswarm from another shell: ``gswarm`` when that name finds this very program on PATH,
    else its absolute path (``…/.venv/bin/gswarm`` right after README's install, venv not activated; newcomer
    trial: "gswarm: command not found")."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if os.path.basename(argv0) != "gswarm":  # python -m gswarm, a test runner: the plain name
        return "gswarm"
    found = shutil.which("gswarm")
    if found and os.path.realpath(found) == os.path.realpath(argv0):
        return "gswarm"
    return os.path.abspath(argv0)


def parse_duration(text: str) -> float:
    """``"60"``, ``"90s"``, ``"2m"``, ``"1h30m"``, ``"2d"`` → seconds (:mod:`gswarm.config.durations`).
    Raises ConfigError naming --duration."""
    from gswarm.config.durations import parse_duration as parse

    return parse(text, "option --duration")


def run(
    rl_swarm_dir: Optional[Path] = typer.Option(None, "--rl-swarm-dir", help="RL Swarm checkout (default: current folder)."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help="GSwarm state directory (env GSWARM_STATE_DIR)."),
    config_file: Optional[Path] = typer.Option(None, "--config-file", help="TOML file with options."),
    profile: Optional[str] = typer.Option(None, "--profile", help="Profile to apply below the config file (env GSWARM_PROFILE; `gswarm profile list`)."),
    node_name: Optional[str] = typer.Option(None, "--node-name", help="Name of this node in logs, store and API."),
    python: Optional[Path] = typer.Option(None, "--python", help="Interpreter of the node's venv (direct mode)."),
    via_script: Optional[bool] = typer.Option(None, "--via-script/--direct", help="Run run_rl_swarm.sh under a pty."),
    testnet: Optional[bool] = typer.Option(None, "--testnet/--no-testnet", help="Connect to the Gensyn testnet (E1/E2)."),
    swarm: Optional[str] = typer.Option(None, "--swarm", help="E2 swarm: A (Math) or B (Math Hard)."),
    model_size: Optional[str] = typer.Option(None, "--model-size", help="E2 model size: 0.5, 1.5, 7, 32, 72."),
    model_name: Optional[str] = typer.Option(None, "--model-name", help="Hugging Face model id (E3-E6)."),
    hf_token: Optional[str] = typer.Option(None, "--hf-token", help="Discouraged (visible in ps): prefer env GSWARM_HF_TOKEN."),
    org_id: Optional[str] = typer.Option(None, "--org-id", help="ORG_ID from modal-login userData.json."),
    identity_path: Optional[Path] = typer.Option(None, "--identity-path", help="swarm.pem path."),
    contract_address: Optional[str] = typer.Option(None, "--contract-address", help="Swarm coordinator contract."),
    game: Optional[str] = typer.Option(None, "--game", help="E2 game: gsm8k or dapo."),
    config_path: Optional[Path] = typer.Option(None, "--config-path", help="Node config YAML (E0-E2)."),
    cpu_only: Optional[bool] = typer.Option(None, "--cpu-only/--gpu", help="Force the CPU configuration (E0-E2)."),
    requirements: Optional[Path] = typer.Option(None, "--requirements", help="Requirements file to install instead."),
    prg_game: Optional[bool] = typer.Option(None, "--prg-game/--no-prg-game", help="E5: take part in the prediction market."),
    stop_timeout: Optional[str] = typer.Option(None, "--stop-timeout", help="Grace between SIGTERM and SIGKILL: seconds or 90s, 2m."),
    backoff_initial: Optional[str] = typer.Option(None, "--backoff-initial", help="First restart delay: seconds or 30s, 1m."),
    backoff_max: Optional[str] = typer.Option(None, "--backoff-max", help="Cap of the restart delay: seconds or 5m, 1h."),
    crash_loop_max: Optional[int] = typer.Option(None, "--crash-loop-max", help="Failures within the window that mean FATAL."),
    crash_loop_window: Optional[str] = typer.Option(None, "--crash-loop-window", help="Crash-loop window: seconds or 10m, 1h."),
    restart_on_clean_exit: Optional[bool] = typer.Option(None, "--restart-on-clean-exit/--no-restart-on-clean-exit",
                                                         help="Restart when the node exits 0 unexpectedly."),
    auto_setup: Optional[bool] = typer.Option(None, "--auto-setup/--no-auto-setup",
                                              help="Prepare venv, modal-login and login before starting (direct mode)."),
    hardware: Optional[str] = typer.Option(None, "--hardware", help="Requirements flavour: auto, cpu, gpu, mps."),
    login_timeout: Optional[str] = typer.Option(None, "--login-timeout", help="Wait this long for the browser login: seconds or 10m."),
    api_port: Optional[int] = typer.Option(None, "--api-port", help="API/dashboard port (0 = any free port)."),
    no_api: bool = typer.Option(False, "--no-api", help="Do not serve the API and dashboard."),
    emulated: bool = typer.Option(False, "--emulated", help="Supervise a built-in emulated node (no GPU/login/network)."),
    generation: Optional[str] = typer.Option(None, "--generation", help="With --emulated: the generation to emulate (E0-E6, default E6)."),
    emu_faults: Optional[str] = typer.Option(None, "--emu-faults", help="With --emulated: fault schedule (e.g. crash:cuda_oom@10)."),
    emu_pace: Optional[float] = typer.Option(None, "--emu-pace", help="With --emulated: seconds per emulated step."),
    duration: Optional[str] = typer.Option(None, "--duration", help="Stop after this long: 60, 90s, 2m, 1h30m."),
    nodes: Optional[int] = typer.Option(None, "--nodes", help="With --emulated: supervise this many emulated nodes "
                                        "in one host (real nodes: \\[\\[nodes]] tables in --config-file)."),
) -> None:
    """Start the node and keep it running: output, crashes with causes, backoff and restarts."""
    flags = {k: v for k, v in locals().items() if k not in ("no_api", "emulated", "generation", "emu_faults", "emu_pace", "duration", "nodes")}
    if no_api:
        flags["api_enabled"] = False
    generation = check_generation(generation, emulated)
    if emu_faults is not None:
        check_faults(emu_faults, "option --emu-faults")
    if emu_pace is not None:
        check_pace(emu_pace, "option --emu-pace")
    if os.environ.get("GSWARM_EMU_FAULTS"):
        check_faults(os.environ["GSWARM_EMU_FAULTS"], "environment variable GSWARM_EMU_FAULTS")
    demo_state = None
    seconds = parse_duration(duration) if duration is not None else None
    if emulated:
        flags["emulated"] = True
        check_demo_input(flags, nodes)  # bad input is refused before the demo prints hints or makes a folder
        if state_dir is None and not os.environ.get("GSWARM_STATE_DIR"):
            # the demo must not write its crashes, history and locks into the operator's real state dir
            demo_state = Path(tempfile.mkdtemp(prefix="gswarm-demo-state-"))
            flags["state_dir"] = demo_state
            typer.echo(f"demo state in {demo_state}: while it runs, try `{_me()} status --state-dir {demo_state}` "
                       "in another shell")
        if api_port is None and not no_api and config_file is None and not os.environ.get("GSWARM_API_PORT") \
                and not demo_api_port():
            flags["api_port"] = 0  # 8787 is taken (another demo?): any free port, printed at start
    if hf_token:
        typer.echo("warning: --hf-token is visible to every local user (ps); prefer env GSWARM_HF_TOKEN", err=True)
    from gswarm.cli._runmain import run_main

    try:
        code = run_main(flags, seconds=seconds, generation=generation, emu_faults=emu_faults, emu_pace=emu_pace,
                        nodes=nodes)
    finally:
        if demo_state is not None and not (demo_state / "gswarm.db").exists():  # it never ran: leave nothing behind
            shutil.rmtree(demo_state, ignore_errors=True)
        elif demo_state is not None:
            me = _me()
            typer.echo(f"gswarm demo state kept in {demo_state} (your own state directory was not used); look around with "
                       f"`{me} status --state-dir {demo_state}` or `{me} logs --state-dir {demo_state} --level warning`; "
                       f"for a real node see README \"On a real checkout\"")
    if code:
        raise typer.Exit(code)


def check_demo_input(flags: dict, nodes: int | None) -> None:
    """Validate the options of ``gswarm run --emulated`` up front (ConfigError naming the option, as the run would
    raise): the settings with a placeholder state dir, and ``--nodes``. Nothing is created or printed."""
    from gswarm.config import load_settings
    from gswarm.config.nodes import emulated_nodes

    load_settings({**flags, "state_dir": Path(tempfile.gettempdir())})
    if nodes is not None:
        emulated_nodes(nodes)


def demo_api_port(host: str = "127.0.0.1", preferred: int = 8787) -> int:
    """The demo's API port: ``preferred`` when it can be bound on ``host`` now, else 0 (any free port; the
    address actually bound is printed at start). A second demo beside a first one, or beside anything else
    on 8787, must not fail on the port (an operator's ``--api-port``/GSWARM_API_PORT is never overridden)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the API server binds
        try:
            sock.bind((host, preferred))
        except OSError:
            return 0
    return preferred


def check_generation(value: str | None, emulated: bool) -> str:
    """``--generation`` of ``gswarm run`` as ``"E0"``…``"E6"`` (any case, like ``diagnose --generation``; default
    E6). ConfigError when it is not a generation, or given without ``--emulated`` (a real checkout's generation
    is detected from its files; ``gswarm plan`` shows it) instead of being silently ignored."""
    from gswarm.rlswarm.generations import GENERATIONS

    if value is None:
        return "E6"
    if not emulated:
        raise ConfigError(f"option --generation {value!r} only applies with --emulated: a real checkout's generation "
                          "is detected from its files (see `gswarm plan`)")
    if value.strip().upper() not in GENERATIONS:
        raise ConfigError(f"option --generation: {value!r} is not one of {', '.join(GENERATIONS)}")
    return value.strip().upper()


def check_faults(text: str, source: str) -> None:
    """Validate an emulator fault schedule before anything starts; ConfigError naming ``source`` (the flag
    or variable), the bad item and the kinds/categories allowed (the node would only fail at its start)."""
    import json

    from gswarm.emulator.checkout import FAILURE_TEXTS
    from gswarm.emulator.node import parse_faults

    try:
        faults = parse_faults(text)
    except ValueError as exc:
        raise ConfigError(f"{source}: {str(exc).removeprefix('GSWARM_EMU_FAULTS: ')} (e.g. crash:cuda_oom@10,sigkill@60#2)") from None
    texts = json.loads(FAILURE_TEXTS.read_text(encoding="utf-8"))
    known = sorted(k for k in texts if not k.startswith("_"))
    for f in faults:
        if f.kind == "crash" and f.arg not in texts:
            raise ConfigError(f"{source}: crash:{f.arg} is not a failure category the emulator can show; "
                              f"use one of {', '.join(known)}")


def check_pace(value: float, source: str) -> None:
    """Validate the emulator's seconds per step before anything starts: ConfigError naming ``source`` unless
    ``value`` is a positive finite number (0, negative, nan or inf make the emulated node crash-loop)."""
    import math

    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{source}: {value!r} is not a positive number of seconds per emulated step; use e.g. 0.05 or 1")


def register(app: typer.Typer) -> None:
    """Add ``gswarm run`` to ``app``."""
    app.command("run")(run)
