"""Per-generation constants: entry points, contracts, configs, addresses (private).

Every value is quoted from ``shared/rlswarm/generations.md``; the section is
named next to each constant.
"""

from __future__ import annotations

# Python entry point per generation (§12 "Launch command"); E3 is a script path, the others modules.
ENTRY_MODULE = {
    "E0": "hivemind_exp.gsm8k.train_single_gpu",
    "E1": "hivemind_exp.gsm8k.train_single_gpu",
    "E2": "hivemind_exp.gsm8k.train_single_gpu",
    "E4": "rgym_exp.runner.swarm_launcher",
    "E5": "rgym_exp.runner.swarm_launcher",
    "E6": "code_gen_exp.runner.swarm_launcher",
}
E3_SCRIPT = "genrl-swarm/src/genrl_swarm/runner/swarm_launcher.py"  # §6.4

# Hydra config dir (relative to the checkout) and config name, E3-E6 (§6.4, §7.4, §9.4)
HYDRA_CONFIG = {
    "E3": ("configs", "rg-swarm.yaml"),
    "E4": ("rgym_exp/config", "rg-swarm.yaml"),
    "E5": ("rgym_exp/config", "rg-swarm.yaml"),
    "E6": ("code_gen_exp/config", "code-gen-swarm.yaml"),
}

# Regexes matched against command lines to find the trainer under run_rl_swarm.sh (script mode)
WATCH = {
    "E0": r"hivemind_exp\.gsm8k\.train_single_gpu",
    "E1": r"hivemind_exp\.gsm8k\.train_single_gpu",
    "E2": r"hivemind_exp\.gsm8k\.train_single_gpu",
    "E3": r"genrl_swarm/runner/swarm_launcher\.py",
    "E4": r"rgym_exp\.runner\.swarm_launcher",
    "E5": r"rgym_exp\.runner\.swarm_launcher",
    "E6": r"code_gen_exp\.runner\.swarm_launcher",
}
WATCH["unknown"] = "|".join(dict.fromkeys(WATCH.values()))

# Coordinator contracts (§2.4 .env table, §4.5, §5.5, §9.3)
E1_CONTRACT = "0x2fC68a233EF9E9509f034DD551FF90A79a0B8F82"  # hard-coded in hivemind_exp/chain_utils.py
E2_CONTRACTS = {"A": "0x69C6e1D608ec64885E7b185d39b04B491a71768C", "B": "0x6947c6E196a48B77eFa9331EC1E3e45f3Ee5Fd58"}
GENRL_CONTRACT = "0xFaD7C5e93f28257429569B854151A1B8DCD404c2"  # E3, E4, E5
E6_CONTRACT = "0x7745a8FE4b8D2D2c3BB103F8dCae822746F35Da0"
E5_PRG_CONTRACT = "0x51D4db531ae706a6eC732458825465058fA23a35"  # 08-26 → v0.6.4; exported to the trainer too (v0.6.0-v0.6.4 run_rl_swarm.sh)


def swarm_contract(generation: str, swarm: str = "A") -> str | None:
    """The coordinator contract a generation uses by default (None for E0)."""
    if generation == "E1":
        return E1_CONTRACT
    if generation == "E2":
        return E2_CONTRACTS["B" if swarm == "B" else "A"]
    if generation in ("E3", "E4", "E5"):
        return GENRL_CONTRACT
    if generation == "E6":
        return E6_CONTRACT
    return None


# E0-E2 local (non-testnet) multiaddrs: script defaults (§3.3)
PEER_MULTI_ADDRS = "/ip4/38.101.215.13/tcp/30002/p2p/QmQ2gEXoPJg6iMBSUFWGzAabS2VhnzuS782Y637hGjfsRJ"
HOST_MULTI_ADDRS = "/ip4/0.0.0.0/tcp/38331"
PUB_MULTI_ADDRS = ""


def hivemind_config(generation: str, model_size: str, gpu: bool) -> str:
    """E0-E2 ``--config`` path relative to the checkout (§3.3, §4.2, §5.3).

    E0/E1: 0.5B config, ``gpu`` or ``mac`` folder. E2 GPU: by parameter count,
    32/72 use the ``bnb-4bit`` variants; E2 CPU: the mac 0.5B config.
    """
    if not gpu:
        return "hivemind_exp/configs/mac/grpo-qwen-2.5-0.5b-deepseek-r1.yaml"
    if generation != "E2":
        return "hivemind_exp/configs/gpu/grpo-qwen-2.5-0.5b-deepseek-r1.yaml"
    quant = "-bnb-4bit" if model_size in ("32", "72") else ""
    return f"hivemind_exp/configs/gpu/grpo-qwen-2.5-{model_size}b{quant}-deepseek-r1.yaml"
