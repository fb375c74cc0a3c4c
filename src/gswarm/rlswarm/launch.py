"""Build the :class:`~gswarm.supervisor.spec.LaunchSpec` for a checkout: direct or script mode.

Script mode hands the script only what it needs: the inherited environment loses every ``GSWARM_*``
variable and ``MODEL_NAME`` (:func:`gswarm.supervisor.scriptmode.node_environ`); ``HF_TOKEN`` is set
for E1–E4, whose script reads it; E5/E6 get the token as the answer to their Hugging Face prompt. The
``GSWARM_EMU_*`` knobs of GSwarm's own environment are passed on to an *emulated* checkout only.

Direct mode (default) starts the generation's Python entry point itself with the
argv and environment ``run_rl_swarm.sh`` would have used (generations.md §12 and
each era's "Launch" item); script mode (``settings.via_script``, and always for
``unknown`` checkouts) runs ``bash run_rl_swarm.sh`` under a pty and answers its
prompts (:mod:`gswarm.rlswarm.prompts`).

Secrets: the Hugging Face token only ever travels in the environment
(``secret_env``). The official E1/E2 script passes it on argv (``--hf_token T``,
§4.4/§5.4), where every local user can read it with ``ps``. Direct mode instead
passes ``--hf_token None`` and puts the token into ``HF_TOKEN`` and
``HUGGINGFACE_ACCESS_TOKEN``: huggingface_hub still authenticates downloads, but
E1/E2 trainers take the push token from argv (§4.4), so with ``None`` there
they do not push models to the Hub. That trade-off is stated in the spec's notes. E3–E6 read
``HUGGINGFACE_ACCESS_TOKEN`` from the environment, so nothing is lost there.

``settings.extra_env`` is applied last in both modes, so it can override any
variable GSwarm sets (names that look secret are masked like the token).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from gswarm.config.settings import is_secret_name
from gswarm.errors import CheckoutError, ConfigError
from gswarm.rlswarm import _eras
from gswarm.rlswarm._direct import genrl_argv, hivemind_argv, hf_token
from gswarm.rlswarm.generations import SCRIPT, UNKNOWN, Detection, detect
from gswarm.rlswarm.options import inapplicable
from gswarm.rlswarm.prompts import prompts_for
from gswarm.supervisor.spec import LaunchSpec

HF_SECRET_ENV = ("HF_TOKEN", "HUGGINGFACE_ACCESS_TOKEN")


def _interpreter(settings: Any, checkout: Path, notes: list[str]) -> str:
    if settings.python is not None:
        py = Path(settings.python)
        if not py.exists():
            raise ConfigError(f"option python: {py} does not exist; pass --python with the node venv's interpreter")
        return str(py)
    venv = checkout / ".venv" / "bin" / "python"
    if venv.exists():
        return str(venv)
    notes.append(f"no --python and no {venv}: using GSwarm's own interpreter {sys.executable}")
    return sys.executable


def _extra_env(settings: Any, env: dict[str, str]) -> set[str]:
    """Apply ``settings.extra_env`` on top of ``env``; returns the names that look secret."""
    env.update({k: str(v) for k, v in settings.extra_env.items()})
    return {k for k in settings.extra_env if is_secret_name(k)}


def _direct(settings: Any, checkout: Path, det: Detection, gpu: bool, notes: list[str], require_login: bool) -> LaunchSpec:
    env: dict[str, str] = {}
    py = _interpreter(settings, checkout, notes)
    gen = det.generation
    lenient = None if require_login else notes
    if gen in ("E0", "E1", "E2"):
        rest = hivemind_argv(settings, checkout, gen, gpu, env, notes, lenient)
    else:
        rest = genrl_argv(settings, checkout, gen, env, notes, lenient)
    token = hf_token(settings)
    if token:
        env["HF_TOKEN"] = token
        env["HUGGINGFACE_ACCESS_TOKEN"] = token
    env["PYTHONUNBUFFERED"] = "1"  # GSwarm's addition: line-timely output through the pipe
    secret = _extra_env(settings, env)
    return LaunchSpec(argv=(py, *rest), cwd=checkout, env=env, mode="direct", generation=gen, evidence=det.evidence,
                      secret_env=frozenset(secret | set(HF_SECRET_ENV)), notes=tuple(notes))


_SCRIPT_IGNORES = {
    "org_id": "run_rl_swarm.sh reads modal-login/temp-data/userData.json",
    "config_path": "run_rl_swarm.sh picks the config from the hardware and the size answer",
    "game": "run_rl_swarm.sh derives the game from the swarm answer",
    "contract_address": "run_rl_swarm.sh uses its own contract",
}


def _script(settings: Any, checkout: Path, det: Detection, notes: list[str]) -> LaunchSpec:
    if not (checkout / SCRIPT).is_file():
        raise CheckoutError(f"{checkout / SCRIPT} does not exist: script mode needs it; drop --via-script")
    env: dict[str, str] = {}
    secret: set[str] = set()
    if settings.python is not None:
        env["PATH"] = str(Path(settings.python).parent) + os.pathsep + os.environ.get("PATH", "")
        notes.append(f"script mode: {Path(settings.python).parent} first on PATH so the script's `python` is the node venv")
    if settings.identity_path:
        env["IDENTITY_PATH"] = str(settings.identity_path)
    if settings.cpu_only:
        env["CPU_ONLY"] = "1"
    if (checkout / ".gswarm-emulator").is_dir():  # an emulated checkout: its knobs are meant for the node
        env.update({k: v for k, v in os.environ.items() if k.startswith("GSWARM_EMU_")})
    if hf_token(settings) and det.generation in ("E1", "E2", "E3", "E4", UNKNOWN):
        env["HF_TOKEN"] = hf_token(settings)  # E1-E4 then skip the HF prompt; E5/E6 ignore it and ask (§8.3)
        secret.add("HF_TOKEN")
        if det.generation in ("E1", "E2", UNKNOWN):
            notes.append("script mode: the E1/E2 script passes the Hugging Face token on the trainer's argv "
                         "(--hf_token, visible in `ps`); direct mode keeps it in the environment")
    secret |= _extra_env(settings, env)
    given = settings.model_fields_set
    for field, why in _SCRIPT_IGNORES.items():
        if field in given and getattr(settings, field, None) is not None:
            notes.append(f"script mode: --{field.replace('_', '-')} is not used; {why}")
    return LaunchSpec(argv=("bash", SCRIPT), cwd=checkout, env=env, mode="script", generation=det.generation,
                      evidence=det.evidence, prompts=prompts_for(det.generation, settings), use_pty=True,
                      secret_env=frozenset(secret), watch_pattern=_eras.WATCH.get(det.generation, _eras.WATCH[UNKNOWN]),
                      notes=tuple(notes))


def detect_configured(settings: Any, checkout: Path | None = None) -> Any:
    """:func:`detect` of ``checkout`` (default ``settings.rl_swarm_dir``). When that folder is not a checkout and
    it is ``settings.rl_swarm_dir`` set by a profile, the config file, a ``GSWARM_*`` variable or the API
    override, the CheckoutError names that source (``option rl_swarm_dir (from profile s): …``): the advice
    "pass --rl-swarm-dir" alone would hide where the bad value lives."""
    checkout = Path(checkout if checkout is not None else settings.rl_swarm_dir).resolve()
    try:
        return detect(checkout)
    except CheckoutError as exc:
        from gswarm.config.settings import source_of

        where = source_of(settings, "rl_swarm_dir")
        if checkout != Path(settings.rl_swarm_dir).resolve() or not where.startswith(
                ("profile ", "file ", "GSWARM_", "api override")):
            raise
        raise CheckoutError(f"option rl_swarm_dir (from {where}): {exc}; or correct it in {where}") from None


def build_launch_spec(settings: Any, checkout: Path | None = None, *, has_gpu: bool | None = None,
                      detection: Detection | None = None, require_login: bool = True) -> LaunchSpec:
    """The launch spec for ``checkout`` (default ``settings.rl_swarm_dir``) under ``settings``.

    ``has_gpu``: NVIDIA present (E0–E2 config choice, §3.3/§5.3); default: an
    ``nvidia-smi`` on PATH, like the script. ``settings.cpu_only`` forces CPU.
    ``detection`` skips re-detecting. ``require_login=False`` (``gswarm plan``)
    puts a placeholder ORG_ID and a note instead of raising when no login exists yet. Unknown generations always use script mode
    (with a note). Notes list inapplicable options (:func:`inapplicable`) and defaults used.

    Raises CheckoutError (not a checkout / no script for script mode), ConfigError
    (``--python`` missing), LoginError (testnet generation without ORG_ID, or a
    malformed userData.json — the message names the file).
    """
    checkout = Path(checkout if checkout is not None else settings.rl_swarm_dir).resolve()
    det = detection or detect_configured(settings, checkout)
    notes = inapplicable(settings, det.generation)
    if settings.via_script or det.generation == UNKNOWN:
        if not settings.via_script:
            notes.append("generation unknown: running run_rl_swarm.sh in script mode")
        return _script(settings, checkout, det, notes)
    gpu = (shutil.which("nvidia-smi") is not None) if has_gpu is None else has_gpu
    return _direct(settings, checkout, det, gpu and not settings.cpu_only, notes, require_login)
