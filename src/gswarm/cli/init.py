"""``gswarm init``: a setup wizard that writes a profile and prints the next command.

It asks what an operator knows — the checkout, the model (E3-E6) or swarm (E2), Hugging Face push,
notifications, running as a service — detects the hardware (NVIDIA GPUs and VRAM through NVML, RAM through
psutil, Apple Silicon), proposes a template (:func:`gswarm.config.templates.propose`), and saves the answers
as a profile (:mod:`gswarm.config.profiles`; secrets only as ``env:`` references, never asked for).

Scriptable: every question has a flag; ``--yes`` takes the default of every question not given; without a
terminal (stdin not a tty) and without ``--yes`` it never waits on a question: it fails (exit 2) listing the
flags still missing. Longer than ~150 lines: the hardware probe and the question helper live beside the
one command that uses them.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from gswarm.config import profiles as P
from gswarm.config.templates import BY_NAME, propose
from gswarm.errors import ConfigError
from gswarm.paths import state_dir as resolve_state_dir


@dataclass
class Hardware:
    """What the machine has: ``gpus`` [(name, VRAM GiB)], ``ram_gib``, ``apple_silicon``."""

    gpus: list[tuple[str, float]]
    ram_gib: float
    apple_silicon: bool

    @property
    def vram_gib(self) -> float | None:
        """VRAM of the largest GPU, GiB (None without NVIDIA GPU)."""
        return max((v for _, v in self.gpus), default=None)

    def describe(self) -> str:
        """One line, e.g. ``1 NVIDIA GPU (RTX 4090, 24.0 GiB), 64.0 GiB RAM``."""
        gpu = (", ".join(f"{n}, {v:.1f} GiB" for n, v in self.gpus) if self.gpus else
               "Apple Silicon (MPS)" if self.apple_silicon else "no NVIDIA GPU")
        return f"{gpu}; {self.ram_gib:.1f} GiB RAM"


def detect_hardware(nvml: Any = None) -> Hardware:
    """NVIDIA GPUs via NVML (``pynvml``; none when the library or driver is missing), RAM via psutil,
    Apple Silicon from the platform (Darwin on arm64)."""
    import psutil

    gpus: list[tuple[str, float]] = []
    try:
        if nvml is None:
            import pynvml as nvml
        nvml.nvmlInit()
        try:
            for i in range(nvml.nvmlDeviceGetCount()):
                h = nvml.nvmlDeviceGetHandleByIndex(i)
                name = nvml.nvmlDeviceGetName(h)
                name = name.decode() if isinstance(name, bytes) else str(name)
                gpus.append((name, nvml.nvmlDeviceGetMemoryInfo(h).total / 2**30))
        finally:
            nvml.nvmlShutdown()
    except Exception:  # no library, no driver, no GPU: not an error here
        gpus = []
    apple = platform.system() == "Darwin" and platform.machine() in ("arm64", "aarch64")
    return Hardware(gpus, psutil.virtual_memory().total / 2**30, apple)


def _generation(checkout: Path) -> str | None:
    from gswarm.errors import CheckoutError
    from gswarm.rlswarm.generations import detect

    try:
        return detect(checkout).generation
    except CheckoutError:
        return None


class Asker:
    """Answers from flags, defaults (``yes``) or the terminal; records questions nobody answered."""

    def __init__(self, yes: bool, interactive: bool) -> None:
        self.yes, self.interactive, self.missing = yes, interactive, []

    def ask(self, given: Any, flag: str, text: str, default: Any, check: Callable[[Any], Any] | None = None) -> Any:
        """``given`` if not None; else the default (``--yes``), the terminal's answer, or None + recorded."""
        if given is not None:
            return check(given) if check else given
        if self.yes:
            return default
        if not self.interactive:
            self.missing.append(flag)
            return default
        while True:
            if isinstance(default, bool):
                return typer.confirm(text, default=default)
            answer = typer.prompt(text, default="" if default is None else str(default), show_default=default is not None)
            try:
                return check(answer) if check else answer
            except ConfigError as exc:
                typer.echo(f"  {exc}")


def _template(name: str) -> str:
    if name not in BY_NAME:
        raise ConfigError(f"option --template: {name!r} is not a template; use one of {', '.join(BY_NAME)}")
    return name


def _checkout(text: str, allow_other: bool = False, given: bool = True) -> Path:
    """The checkout folder, resolved. ConfigError (exit 2) naming it when it is not a folder, or — unless
    ``allow_other`` (``--not-a-checkout``) — not an RL Swarm checkout (:func:`gswarm.rlswarm.generations.detect`):
    a profile pointing there would only make ``gswarm run`` fail later. ``given``: the folder came from
    --rl-swarm-dir or the terminal (else it is the current folder, the default)."""
    path = Path(text).expanduser().resolve()
    what = f"option --rl-swarm-dir: {path}" if given else f"the current folder {path} (the default of --rl-swarm-dir)"
    if not path.is_dir():
        raise ConfigError(f"{what} is not a folder; clone gensyn-ai/rl-swarm there first")
    if not allow_other and _generation(path) is None:
        raise ConfigError(f"{what} is not an RL Swarm checkout (no run_rl_swarm.sh and none of code_gen_exp/, "
                          "rgym_exp/, hivemind_exp/gsm8k/); pass --rl-swarm-dir with your clone of gensyn-ai/rl-swarm "
                          "or cd into it and run gswarm init again (--not-a-checkout saves this folder anyway, "
                          "e.g. before cloning into it)")
    return path


def _model(text: str) -> str:
    """``text`` if it is ``-`` (the launcher's pick) or a valid model id (the rule of option model_name,
    :data:`gswarm.config.settings.MODEL_NAME_RULE`); else ConfigError naming --model-name."""
    from gswarm.config.settings import MODEL_NAME_RULE, Settings

    value = str(text).strip()
    if value in ("-", ""):
        return "-"
    try:
        Settings.model_validate({"model_name": value})
    except Exception:
        raise ConfigError(f"option --model-name: {value[:60]!r} is not {MODEL_NAME_RULE}, "
                          "or '-' for the launcher's own pick") from None
    return value


def init(
    rl_swarm_dir: Optional[str] = typer.Option(None, "--rl-swarm-dir", help="Q: RL Swarm checkout (default: current folder)."),
    template: Optional[str] = typer.Option(None, "--template", help="Q: template (default: proposed from the hardware)."),
    model_name: Optional[str] = typer.Option(None, "--model-name", help="Q: E3-E6 model (default: the template's; '-' = the launcher's pick)."),
    swarm: Optional[str] = typer.Option(None, "--swarm", help="Q: E2 swarm A (Math) or B (Math Hard)."),
    hf_push: Optional[bool] = typer.Option(None, "--hf-push/--no-hf-push", help="Q: push trained models to Hugging Face (token from env GSWARM_HF_TOKEN)."),
    notify: Optional[bool] = typer.Option(None, "--notify/--no-notify", help="Q: send notifications (URLs from env GSWARM_NOTIFY_URLS)."),
    service: Optional[bool] = typer.Option(None, "--service/--no-service", help="Q: run as a service after boot."),
    name: Optional[str] = typer.Option(None, "--name", help="Q: profile name (default: main)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Take the default of every question not given as a flag."),
    force: bool = typer.Option(False, "--force", help="Replace an existing profile of that name."),
    use: bool = typer.Option(True, "--use/--no-use", help="Make the profile the default (`gswarm profile use`)."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help="GSwarm state directory (env GSWARM_STATE_DIR)."),
    not_a_checkout: bool = typer.Option(False, "--not-a-checkout", help="Save --rl-swarm-dir even though it is not "
                                        "an RL Swarm checkout (yet); `gswarm run` fails until it is one."),
) -> None:
    """Set up GSwarm for this machine: answers + detected hardware → a profile, then the next command."""
    ask = Asker(yes, interactive=sys.stdin.isatty())
    hw = detect_hardware()
    typer.echo(f"hardware: {hw.describe()}")
    if not hw.gpus and not hw.apple_silicon and hw.ram_gib < 31:
        typer.echo(f"warning: {hw.ram_gib:.0f} GiB RAM; the RL Swarm README asks for at least 32 GB on CPU-only machines "
                   "(v0.7.0 README.md) and CPU nodes are killed by the kernel's OOM killer below that")
    # every answer given as a flag is checked before anything is asked or written (exit 2 naming the flag)
    if swarm is not None:
        swarm = _swarm(swarm)
    if model_name is not None:
        model_name = _model(model_name)
    if name is not None:
        P.check_name(name)
    check_dir = lambda text: _checkout(text, not_a_checkout)  # noqa: E731
    checkout = ask.ask(rl_swarm_dir, "--rl-swarm-dir", "RL Swarm checkout", os.getcwd(), check_dir)
    if checkout and rl_swarm_dir is None and ask.yes:  # --yes took the default (the current folder) unchecked
        checkout = _checkout(str(checkout), not_a_checkout, given=False)
    gen = _generation(Path(checkout)) if checkout else None
    typer.echo(f"checkout: {checkout} ({'generation ' + gen if gen else 'not an RL Swarm checkout yet'})")
    proposed = propose(hw.vram_gib, hw.apple_silicon, gen)
    typer.echo(f"proposed template: {proposed.name} ({proposed.title})")
    tpl = BY_NAME[ask.ask(template, "--template", f"Template ({', '.join(BY_NAME)})", proposed.name, _template)]
    options: dict[str, Any] = {**tpl.options, "rl_swarm_dir": str(checkout)}
    # E2 (v0.4.4 run_rl_swarm.sh): swarm A/B and a size prompt choose the config; no MODEL_NAME there, and no
    # swarm prompt in any other generation
    if gen == "E2":
        options.pop("model_name", None)
        options["swarm"] = ask.ask(swarm, "--swarm", "Swarm: A (Math) or B (Math Hard)", "A", _swarm)
        if model_name not in (None, "-"):
            raise ConfigError(f"option --model-name: the checkout {checkout} is generation E2, which picks its model "
                              "by size (model_size), not by name; drop --model-name")
    else:
        if swarm is not None and gen not in (None, "unknown"):
            raise ConfigError(f"option --swarm: the checkout {checkout} is generation {gen}; only E2 has swarms "
                              "A/B; drop --swarm")
        if swarm is not None:
            options["swarm"] = swarm
        model = ask.ask(model_name, "--model-name", "Model ('-' = let the launcher pick)", tpl.options.get("model_name", "-"),
                        _model)
        if model in ("-", "", None):
            options.pop("model_name", None)
        else:
            options["model_name"] = model
    if ask.ask(hf_push, "--hf-push/--no-hf-push", "Push trained models to Hugging Face?", False):
        options["hf_token"] = "env:GSWARM_HF_TOKEN"
    if ask.ask(notify, "--notify/--no-notify", "Send notifications (Telegram, Discord, e-mail…)?", False):
        options["notify_urls"] = "env:GSWARM_NOTIFY_URLS"
    as_service = ask.ask(service, "--service/--no-service", "Run GSwarm as a service after boot?", False)
    pname = ask.ask(name, "--name", "Profile name", "main", P.check_name)
    if ask.missing:
        raise ConfigError("no terminal to ask on and these questions were not answered: " + ", ".join(ask.missing)
                          + "; pass them as flags or add --yes to take the defaults")
    gens = tpl.generations if gen in (None, "unknown") or gen in tpl.generations else (gen,)  # made for this checkout
    _finish(P.Profile(pname, options, f"gswarm init: {tpl.title}", gens, tpl.name), state_dir, force, use, as_service, hw)


def _swarm(text: str) -> str:
    value = str(text).strip().upper()
    if value not in ("A", "B"):
        raise ConfigError(f"option --swarm: {text!r} is not A or B")
    return value


def _finish(prof: P.Profile, state_dir: Optional[Path], force: bool, use: bool, as_service: bool, hw: Hardware) -> None:
    env = os.environ.get("GSWARM_STATE_DIR", "").strip()
    folder = resolve_state_dir(state_dir or (Path(env) if env else None), writable=True)
    if P.profile_path(folder, prof.name).exists() and not force:
        raise ConfigError(f"profile {prof.name} exists in {P.profiles_dir(folder)}; pass --force to replace it "
                          "or --name for another name")
    path = P.write(folder, prof)
    if use:
        P.set_active(folder, prof.name)
    typer.echo(f"wrote profile {prof.name} to {path}" + (" (now the default profile)" if use else ""))
    for key in ("hf_token", "notify_urls"):
        if key in prof.options:
            typer.echo(f"  {key} is read from env {prof.options[key][4:]} at every start: export it before `gswarm run`")
    sd = f" --state-dir {state_dir}" if state_dir else ""
    run = f"gswarm run{sd}" + ("" if use else f" --profile {prof.name}")
    if as_service:
        typer.echo(f"next: check with `gswarm plan{sd}`, then install the service with `gswarm service install{sd}` "
                   f"(or run `{run}` in the foreground)")
    else:
        typer.echo(f"next: {run}")


def register(app: typer.Typer) -> None:
    """Add ``gswarm init`` to ``app``."""
    app.command("init")(init)
