"""``gswarm plan``: detect the generation of a checkout and show what ``gswarm run`` would start."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from gswarm.cli._common import ConfigFile, JsonOut, RlSwarmDir, StateDir, settings_from
from gswarm.rlswarm import _parity
from gswarm.rlswarm.launch import build_launch_spec, detect_configured
from gswarm.rlswarm.options import inapplicable


def plan_json(settings) -> dict:
    """The plan as JSON-ready data: LaunchSpec.to_json() plus ``facts`` (script probes), ``warnings``
    (options that mean nothing for the generation; also in ``notes``), ``launcher_env`` (every variable the
    real run_rl_swarm.sh exports → the value GSwarm sets in direct mode; script mode: the script sets them)
    and ``env_exceptions`` (``[{"name", "why"}]``: GSwarm's written differences). Secrets masked."""
    checkout = Path(settings.rl_swarm_dir).resolve()
    det = detect_configured(settings, checkout)
    spec = build_launch_spec(settings, checkout, detection=det, require_login=False)
    data = spec.to_json()
    data["facts"] = list(det.facts)
    data["warnings"] = inapplicable(settings, det.generation)
    shown = spec.masked_env()
    data["launcher_env"] = _parity.launcher_env(det.generation, shown) if spec.mode == "direct" else {
        n: "(set by run_rl_swarm.sh)" for n in _parity.LAUNCHER_ENV.get(det.generation, ())}
    data["env_exceptions"] = _parity.env_exceptions(det.generation, spec.mode, shown, settings.hf_token is not None)
    return data


def _print(data: dict) -> None:
    out = Console(highlight=False, soft_wrap=True)
    out.print(f"[bold]generation[/] {data['generation']}   [bold]mode[/] {data['mode']}")
    out.print("[bold]evidence[/]  " + "; ".join(data["evidence"]))
    for fact in data["facts"]:
        out.print(f"  fact: {fact}", markup=False)
    out.print(f"[bold]cwd[/]       {data['cwd']}", markup=True)
    out.print("[bold]argv[/]      " + escape(shlex.join(data["argv"])), markup=True)
    for key, value in sorted(data["env"].items()):
        out.print(f"  env {key}={value}", markup=False)
    for p in data["prompts"]:
        out.print(f"  prompt {p['name']}: /{p['pattern']}/ -> {p['answer']!r}", markup=False)
    if data.get("watch_pattern"):
        out.print(f"  watch /{data['watch_pattern']}/", markup=False)
    for exc in data.get("env_exceptions", []):
        out.print(f"  env exception {exc['name']}: {exc['why']}", markup=False)
    for note in data["notes"]:
        out.print(f"[yellow]note:[/] {note}")


def register(app: typer.Typer) -> None:
    """Add ``gswarm plan`` to ``app``."""

    @app.command()
    def plan(
        rl_swarm_dir: Optional[Path] = RlSwarmDir,
        state_dir: Optional[Path] = StateDir,
        config_file: Optional[Path] = ConfigFile,
        profile: Optional[str] = typer.Option(None, "--profile", help="Profile to apply (env GSWARM_PROFILE)."),
        json_out: bool = JsonOut,
        via_script: Optional[bool] = typer.Option(None, "--via-script", help="Plan script mode (run_rl_swarm.sh under a pty)."),
        python: Optional[Path] = typer.Option(None, "--python", help="Interpreter of the node's venv."),
        testnet: Optional[bool] = typer.Option(None, "--testnet/--no-testnet", help="E1/E2: join the testnet."),
        swarm: Optional[str] = typer.Option(None, "--swarm", help="E2: A (Math) or B (Math Hard)."),
        model_size: Optional[str] = typer.Option(None, "--model-size", help="E2: 0.5, 1.5, 7, 32 or 72 (billions)."),
        model_name: Optional[str] = typer.Option(None, "--model-name", help="E3-E6: Hugging Face model id."),
        hf_token: Optional[str] = typer.Option(None, "--hf-token", help="Hugging Face token (prefer env GSWARM_HF_TOKEN)."),
        org_id: Optional[str] = typer.Option(None, "--org-id", help="ORG_ID (default: modal-login userData.json)."),
        identity_path: Optional[Path] = typer.Option(None, "--identity-path", help="swarm.pem path."),
        contract_address: Optional[str] = typer.Option(None, "--contract-address", help="E2-E6 coordinator contract."),
        game: Optional[str] = typer.Option(None, "--game", help="E2: gsm8k or dapo."),
        config_path: Optional[Path] = typer.Option(None, "--config-path", help="E0-E2 node config YAML."),
        cpu_only: Optional[bool] = typer.Option(None, "--cpu-only", help="E0-E2: CPU configuration."),
        requirements: Optional[Path] = typer.Option(None, "--requirements", help="Requirements file for setup."),
        prg_game: Optional[bool] = typer.Option(None, "--prg-game/--no-prg-game", help="E5: AI Prediction Market."),
    ) -> None:
        """Show the generation, evidence and the exact launch (argv, cwd, env, prompts) without starting anything."""
        flags = dict(locals())
        flags.pop("json_out")
        settings = settings_from(**flags)
        if _plan_host(settings, json_out):  # [[nodes]] in the config file: every node's placement
            return
        data = plan_json(settings)
        if json_out:
            typer.echo(json.dumps(data, indent=2))
        else:
            _print(data)


def _plan_host(settings, json_out: bool) -> bool:
    """Print every node's placement and launch when the config file declares ``[[nodes]]``; False if it does not."""
    from gswarm.cli._common import state_dir_of
    from gswarm.config.nodes import read_host_config
    from gswarm.placement import plan_nodes

    host = read_host_config(settings.config_file)
    if host is None:
        return False
    data = plan_nodes(settings, host, state_dir_of(settings, writable=False))
    if json_out:
        typer.echo(json.dumps(data, indent=2))
        return True
    out = Console(highlight=False, soft_wrap=True)
    out.print(f"[bold]{len(data['nodes'])} nodes[/], started {data['stagger']:g} s apart")
    for n in data["nodes"]:
        out.print(f"\n[bold]node {escape(n['node'])}[/]  {n['generation']}  checkout {escape(n['checkout'])}"
                  + (f" (shared with {', '.join(n['shares_checkout'])})" if n["shares_checkout"] else ""))
        out.print(f"  GPUs {n['cuda_visible_devices'] if n['cuda_visible_devices'] is not None else 'all (not placed)'}"
                  f"   p2p {n['p2p']}   identity {escape(n['identity_path'])}", markup=True)
        out.print(f"  account {escape(n['account'])} (modal-login :{n['modal_port']})", markup=True)
        _print(n["launch"] | {"facts": [], "warnings": n["warnings"]})
    return True
