"""Direct-mode argv and environment of each generation (private helper of :mod:`gswarm.rlswarm.launch`).

E0–E2: ``python -m hivemind_exp.gsm8k.train_single_gpu`` with flags (generations.md
§3.4, §4.4, §5.4); E3–E6: the Hydra launchers with env (§6.4, §7.4, §8.4, §9.4, §12).
The environment carries every variable the real script exports (``_parity.LAUNCHER_ENV``, checked
against the tags in ``_parity.SOURCE``): E0–E2 the multiaddrs and IDENTITY_PATH, E1 ``CONNECT_TO_TESTNET``
``True``/``False`` and E2 ``true``/``false``, E1/E2 ORG_ID (empty off the testnet), E3–E6
GENSYN_RESET_CONFIG, E5 PRG_CONTRACT; differences are listed by ``_parity.env_exceptions``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gswarm.errors import LoginError
from gswarm.rlswarm import _eras
from gswarm.rlswarm._userdata import USER_DATA, org_id_from_checkout

MISSING_ORG_ID = "<missing: log in or pass --org-id>"


def _org_id(settings: Any, checkout: Path, generation: str, notes: list[str] | None = None) -> str:
    if settings.org_id:
        return str(settings.org_id)
    org = org_id_from_checkout(checkout)
    if not org and notes is not None:  # planning only: report instead of failing
        notes.append(f"no ORG_ID yet ({checkout / USER_DATA} missing): log in or pass --org-id before gswarm run")
        return MISSING_ORG_ID
    if not org:
        if (checkout / ".gswarm-emulator").is_dir():  # gswarm.emulator.checkout.EMU_DIR: its login is faked too
            raise LoginError(f"this emulated {generation} checkout has no login files ({checkout / USER_DATA}); "
                             f"create them with `gswarm emulate init {checkout} --generation {generation} --logged-in "
                             "--force` or pass any --org-id (e.g. --org-id emu-org)")
        raise LoginError(f"{generation} needs an ORG_ID to join the testnet and {checkout / USER_DATA} does not exist; "
                         "log in first (gswarm login, or run_rl_swarm.sh once) or pass --org-id")
    return org


def hf_token(settings: Any) -> str:
    return settings.hf_token.get_secret_value() if settings.hf_token is not None else ""


def hivemind_argv(settings: Any, checkout: Path, gen: str, gpu: bool, env: dict[str, str], notes: list[str],
              lenient: list[str] | None) -> list[str]:
    """E0-E2 argv after the interpreter (§3.4, §4.4, §5.4)."""
    default_pem = "" if gen == "E0" else str(checkout / "swarm.pem")
    identity = str(settings.identity_path) if settings.identity_path else default_pem
    cfg = str(settings.config_path) if settings.config_path else _eras.hivemind_config(gen, settings.model_size, gpu)
    argv = ["-m", _eras.ENTRY_MODULE[gen]]
    if gen != "E0":
        argv += ["--hf_token", "None"]
        env["HF_HUB_DOWNLOAD_TIMEOUT"] = "120"
        if hf_token(settings):
            notes.append("Hugging Face token passed by env only (HF_TOKEN); E1/E2 push models only with --hf_token "
                         "on argv, so models are not pushed (keeps the token out of `ps`)")
    argv += ["--identity_path", identity]
    env.update({"PUB_MULTI_ADDRS": _eras.PUB_MULTI_ADDRS, "PEER_MULTI_ADDRS": _eras.PEER_MULTI_ADDRS,
                "HOST_MULTI_ADDRS": _eras.HOST_MULTI_ADDRS, "IDENTITY_PATH": identity})
    if gen != "E0":  # E1 v0.3.2 answers True/False, E2 v0.4.x true/false (run_rl_swarm.sh testnet prompt)
        word = "true" if settings.testnet else "false"
        env["CONNECT_TO_TESTNET"] = word if gen == "E2" else word.capitalize()
        env["ORG_ID"] = ""
    if gen != "E0" and settings.testnet:
        env["ORG_ID"] = _org_id(settings, checkout, gen, lenient)
        argv += ["--modal_org_id", env["ORG_ID"]]
        if gen == "E2":
            argv += ["--contract_address", settings.contract_address or _eras.swarm_contract(gen, settings.swarm)]
    else:
        peers_flag = "--initial_peer" if gen == "E0" else "--initial_peers"
        argv += ["--public_maddr", _eras.PUB_MULTI_ADDRS, peers_flag, _eras.PEER_MULTI_ADDRS,
                 "--host_maddr", _eras.HOST_MULTI_ADDRS]
    argv += ["--config", cfg]
    if gen == "E2":
        game = "gsm8k" if not gpu else (settings.game or ("dapo" if settings.swarm == "B" else "gsm8k"))
        argv += ["--game", game]
    return argv


def genrl_argv(settings: Any, checkout: Path, gen: str, env: dict[str, str], notes: list[str],
           lenient: list[str] | None) -> list[str]:
    """E3-E6 argv after the interpreter plus their environment (§6.4-§9.4, §12)."""
    cfg_dir, cfg_name = _eras.HYDRA_CONFIG[gen]
    if gen == "E3":
        argv = [str(checkout / _eras.E3_SCRIPT)]
        if not (checkout / "genrl-swarm").is_dir() or not (checkout / cfg_dir / cfg_name).exists():
            notes.append("E3 needs the genrl-swarm/ clone and configs/rg-swarm.yaml (run_rl_swarm.sh or gswarm setup create them)")
    else:
        argv = ["-m", _eras.ENTRY_MODULE[gen]]
    argv += ["--config-path", str(checkout / cfg_dir), "--config-name", cfg_name]
    token = hf_token(settings)
    env.update({
        "IDENTITY_PATH": str(settings.identity_path or checkout / "swarm.pem"),
        "ORG_ID": _org_id(settings, checkout, gen, lenient),
        "SWARM_CONTRACT": settings.contract_address or _eras.swarm_contract(gen),
        "HUGGINGFACE_ACCESS_TOKEN": token or "None",
        "HF_HUB_DOWNLOAD_TIMEOUT": "120",
        "CONNECT_TO_TESTNET": "true",
        "GENSYN_RESET_CONFIG": os.environ.get("GENSYN_RESET_CONFIG", ""),  # script: ${GENSYN_RESET_CONFIG:-""}
    })
    if settings.model_name:
        env["MODEL_NAME"] = settings.model_name
    else:
        notes.append("no --model-name: the node uses its config's default model (E3 script: \">> Using default "
                     "model from config\")" if gen == "E3" else
                     f"no --model-name: {gen} picks a model at random at every start when MODEL_NAME is unset "
                     "(its swarm_launcher chooses from its configured list); set --model-name to keep one")
    if gen == "E5":
        env["PRG_GAME"] = "true" if settings.prg_game else "false"
        env["PRG_CONTRACT"] = _eras.E5_PRG_CONTRACT
    if gen == "E6" and not (Path(checkout) / ".gswarm-emulator").is_dir():  # the emulated node needs none
        notes.append("E6 needs an ollama server (OLLAMA_HOST, default http://localhost:11434)")
    return argv
