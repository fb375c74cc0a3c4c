"""The emulated ``run_rl_swarm.sh`` of each generation.

Representative script versions (generations.md §0): E0 v0.1.0, E1 v0.3.2, E2
v0.4.4, E3 v0.5.1, E4 v0.5.8, E5 v0.6.4, E6 v0.7.0. Faithful where a supervisor
can see it: banner, prompts in order with the same text via ``read -p`` (shown
only on a tty), the userData.json wait loop and ORG_ID line, API-key activation,
the trainer launched in the foreground followed by ``wait`` (the trap-door of
§2.2: a background stand-in for ``yarn start`` keeps ``wait`` hanging), the EXIT
trap (">> Shutting down trainer...", deletes ``modal-login/temp-data/*.json``,
``kill -- -$$``) and, from v0.4.4, the ERR trap's red marker. No network, pip or yarn.

Emulator environment knobs: ``GSWARM_EMU_POLL`` (seconds between userData.json /
activation polls, default 5), ``GSWARM_EMU_SERVER_DELAY`` (the script's
``sleep 5`` after starting the server, default 0), ``GSWARM_EMU_MODAL_URL``
(poll ``/api/get-api-key-status`` there; unset = activated), ``GSWARM_EMU_PYTHON``
(interpreter for the script's ``python``; default ``python`` or ``python3``).
"""

from __future__ import annotations

from gswarm.emulator import _script_parts as P
from gswarm.rlswarm import _eras

_E2_CONTRACTS = (f'SMALL_SWARM_CONTRACT="{_eras.E2_CONTRACTS["A"]}"\n'
                 f'BIG_SWARM_CONTRACT="{_eras.E2_CONTRACTS["B"]}"\n')

_HIVEMIND_CONFIG = r"""
if [ -n "$CPU_ONLY" ] || ! command -v nvidia-smi > /dev/null 2>&1; then
    CONFIG_PATH="$ROOT/hivemind_exp/configs/mac/grpo-qwen-2.5-0.5b-deepseek-r1.yaml"
    GAME="gsm8k"
else
    CONFIG_PATH="$ROOT/hivemind_exp/configs/gpu/@GPU_CFG@"
    GAME="@GPU_GAME@"
fi
"""

_E2_GPU_CFG = "grpo-qwen-2.5-${PARAM_B}b${QUANT}-deepseek-r1.yaml"
_E2_PRE = ('QUANT=""\nif [ "$PARAM_B" = 32 ] || [ "$PARAM_B" = 72 ]; then QUANT="-bnb-4bit"; fi\n'
           'if [ "$USE_BIG_SWARM" = true ]; then GPU_GAME="dapo"; else GPU_GAME="gsm8k"; fi\n')

_HIVEMIND_LAUNCH = r"""
if [ -n "$ORG_ID" ]; then
    python -m hivemind_exp.gsm8k.train_single_gpu \
        --hf_token "$HUGGINGFACE_ACCESS_TOKEN" \
        --identity_path "$IDENTITY_PATH" \
        --modal_org_id "$ORG_ID" @TESTNET_EXTRA@\
        --config "$CONFIG_PATH" @GAME@
else
    python -m hivemind_exp.gsm8k.train_single_gpu \
        --hf_token "$HUGGINGFACE_ACCESS_TOKEN" \
        --identity_path "$IDENTITY_PATH" \
        --public_maddr "$PUB_MULTI_ADDRS" \
        --initial_peers "$PEER_MULTI_ADDRS" \
        --host_maddr "$HOST_MULTI_ADDRS" \
        --config "$CONFIG_PATH" @GAME@
fi

wait  # Keep script running until Ctrl+C
"""

_GENRL_LAUNCH = {
    "E3": 'python "$ROOT/genrl-swarm/src/genrl_swarm/runner/swarm_launcher.py" --config-path "$ROOT/configs" --config-name "rg-swarm.yaml"',
    "E4": 'python -m rgym_exp.runner.swarm_launcher --config-path "$ROOT/rgym_exp/config" --config-name "rg-swarm.yaml"',
    "E5": 'python -m rgym_exp.runner.swarm_launcher --config-path "$ROOT/rgym_exp/config" --config-name "rg-swarm.yaml"',
    "E6": 'python -m code_gen_exp.runner.swarm_launcher --config-path "$ROOT/code_gen_exp/config" --config-name "code-gen-swarm.yaml"',
}
_SYNC_SRC = {
    "E3": ("rg-swarm.yaml", "$ROOT/genrl-swarm/recipes/rgym/rg-swarm.yaml"),
    "E4": ("rg-swarm.yaml", "$ROOT/rgym_exp/config/rg-swarm.yaml"),
    "E5": ("rg-swarm.yaml", "$ROOT/rgym_exp/config/rg-swarm.yaml"),
    "E6": ("code-gen-swarm.yaml", "$ROOT/code_gen_exp/config/code-gen-swarm.yaml"),
}


def _login(gen: str) -> str:
    contract_var = "SWARM_CONTRACT_ADDRESS" if gen in ("E5", "E6") else "SMART_CONTRACT_ADDRESS"
    rewrite = "" if gen == "E1" else (
        'if [[ "$OSTYPE" == "darwin"* ]]; then\n'
        f'    sed -i \'\' "3s/.*/{contract_var}=$SWARM_CONTRACT/" .env\nelse\n'
        f'    sed -i "3s/.*/{contract_var}=$SWARM_CONTRACT/" .env\nfi\n')
    if gen == "E5":
        rewrite += 'sed -i "4s/.*/PRG_CONTRACT_ADDRESS=$PRG_CONTRACT/" .env\n'
    yarn_log = "/dev/null" if gen == "E1" else "$ROOT/logs/yarn.log"
    text = P.LOGIN.replace("@ENV_REWRITE@", rewrite).replace("@YARN_LOG@", yarn_log)
    if gen != "E1":
        text = text.replace("# GSwarm emulator: a loop", "# yarn build >> \"$ROOT/logs/yarn.log\" (skipped)\n# GSwarm emulator: a loop")
    return text


def _hivemind_script(gen: str) -> str:
    parts = ["#!/bin/bash\n"]
    if gen != "E0":
        parts.append("set -euo pipefail\n")
    parts.append(P.HEAD)
    default_identity = '""' if gen == "E0" else '"$ROOT/swarm.pem"'
    parts.append(P.HIVEMIND_ENV.replace("@DEFAULT_IDENTITY@", default_identity))
    if gen == "E0":
        parts.append(_HIVEMIND_CONFIG.replace("@GPU_CFG@", "grpo-qwen-2.5-0.5b-deepseek-r1.yaml").replace("@GPU_GAME@", "gsm8k"))
        parts.append('echo "Getting requirements..."\necho ">> Done!"\necho "Good luck in the swarm!"\n\n'
                     'python -m hivemind_exp.gsm8k.train_single_gpu --identity_path "$IDENTITY_PATH" '
                     '--public_maddr "$PUB_MULTI_ADDRS" --initial_peer "$PEER_MULTI_ADDRS" '
                     '--host_maddr "$HOST_MULTI_ADDRS" --config "$CONFIG_PATH"\n')
        return "".join(parts)
    parts += ['export CONNECT_TO_TESTNET\nexport ORG_ID\nexport HF_HUB_DOWNLOAD_TIMEOUT=120\nORG_ID=${ORG_ID:-""}\n', P.TRAPS]
    if gen == "E2":
        parts += [P.ERR_TRAP, _E2_CONTRACTS]
    true_word = "true" if gen == "E2" else "True"  # v0.4.x writes lowercase, v0.2.0-v0.3.2 capitalised
    parts += [P.BANNER, P.TESTNET_PROMPT.replace("@TRUE@", true_word).replace("@FALSE@", true_word.replace("rue", "alse"))]
    if gen == "E2":
        parts += [P.SWARM_PROMPTS, 'mkdir -p "$ROOT/logs"\n']
    parts.append(f'if [ "$CONNECT_TO_TESTNET" = "{true_word}" ]; then\n' + _login(gen) + "fi\n")
    parts.append('echo_green ">> Getting requirements..."\n# GSwarm emulator: no pip install\n')
    if gen == "E2":
        cfg = _E2_PRE + _HIVEMIND_CONFIG.replace("@GPU_CFG@", _E2_GPU_CFG).replace("@GPU_GAME@", "$GPU_GAME")
    else:
        cfg = _HIVEMIND_CONFIG.replace("@GPU_CFG@", "grpo-qwen-2.5-0.5b-deepseek-r1.yaml").replace("@GPU_GAME@", "gsm8k")
    parts += [cfg, 'echo_green ">> Done!"\n']
    parts.append('if [ -n "${HF_TOKEN}" ]; then\n    HUGGINGFACE_ACCESS_TOKEN=${HF_TOKEN}\nelse\n' + P.HF_PROMPT + "fi\n")
    parts.append(P.GOOD_LUCK)
    extra = '\\\n        --contract_address "$SWARM_CONTRACT" ' if gen == "E2" else ""
    game = '\\\n        --game "$GAME"' if gen == "E2" else ""
    parts.append(_HIVEMIND_LAUNCH.replace("@TESTNET_EXTRA@", extra).replace("@GAME@", game))
    return "".join(parts)


def _genrl_script(gen: str) -> str:
    parts = ["#!/usr/bin/env bash\n" if gen == "E5" else "#!/bin/bash\n", "set -euo pipefail\n", P.HEAD]
    parts.append(P.GENRL_ENV.replace("@CONTRACT@", _eras.swarm_contract(gen) or ""))
    if gen == "E5":
        parts.append(f'export PRG_CONTRACT="{_eras.E5_PRG_CONTRACT}"\nexport PRG_GAME=true\n')
    parts += [P.TRAPS, P.ERR_TRAP, P.BANNER, 'mkdir -p "$ROOT/logs"\n', _login(gen)]
    parts.append('echo_green ">> Getting requirements..."\n# GSwarm emulator: no pip install --upgrade pip\n')
    if gen == "E3":
        parts.append('echo_green ">> Initializing and updating GenRL..."\n'
                     'if [ ! -d "$ROOT/genrl-swarm" ]; then\n'
                     '    echo_red "Error: genrl-swarm submodule not found at $ROOT/genrl-swarm"\n    exit 1\nfi\n'
                     'echo_green ">> Installing GenRL."\n# GSwarm emulator: no git clone / pip install -e .[examples]\n')
    else:
        parts.append('echo_green ">> Installing GenRL..."\n# GSwarm emulator: no pip install\n')
    name, src = _SYNC_SRC[gen]
    parts += [P.CONFIG_SYNC.replace("@CFG@", name).replace("@SRC@", src), 'echo_green ">> Done!"\n']
    if gen in ("E3", "E4"):
        parts.append('if [ -n "${HF_TOKEN}" ]; then\n    HUGGINGFACE_ACCESS_TOKEN=${HF_TOKEN}\nelse\n' + P.HF_PROMPT + "fi\n")
    else:
        parts.append(P.HF_PROMPT)
    parts.append(P.MODEL_PROMPT)
    if gen == "E5":
        parts.append(P.PRG_PROMPT)
    if gen == "E6":
        parts.append("# GSwarm emulator: the real script runs `hf auth logout` here (2025-11-10+)\n")
    parts += [P.GOOD_LUCK, "\n" + _GENRL_LAUNCH[gen] + "\n\nwait  # Keep script running until Ctrl+C\n"]
    return "".join(parts)


def script_for(generation: str) -> str:
    """The text of ``run_rl_swarm.sh`` for ``generation`` (E0–E6). Raises KeyError for others."""
    if generation in ("E0", "E1", "E2"):
        return _hivemind_script(generation)
    if generation in _GENRL_LAUNCH:
        return _genrl_script(generation)
    raise KeyError(generation)
