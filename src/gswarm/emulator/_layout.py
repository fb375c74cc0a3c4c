"""Which files an emulated checkout of each generation has (private).

The paths are the distinguishing (tracked, and for E3 untracked) paths of
``shared/rlswarm/generations.md`` §1 and each era's "Detector" item, so
:func:`gswarm.rlswarm.generations.detect` is exercised on the same evidence a
real checkout offers. File contents are placeholders except the entry points.
"""

from __future__ import annotations

STUB = "# Placeholder written by the GSwarm emulator (not RL Swarm code).\n"

# entry-point file -> number of folders between it and the checkout root
ENTRY_FILES = {
    "E0": ("hivemind_exp/gsm8k/train_single_gpu.py", 2),
    "E1": ("hivemind_exp/gsm8k/train_single_gpu.py", 2),
    "E2": ("hivemind_exp/gsm8k/train_single_gpu.py", 2),
    "E3": ("genrl-swarm/src/genrl_swarm/runner/swarm_launcher.py", 4),
    "E4": ("rgym_exp/runner/swarm_launcher.py", 2),
    "E5": ("rgym_exp/runner/swarm_launcher.py", 2),
    "E6": ("code_gen_exp/runner/swarm_launcher.py", 2),
}

_HIVEMIND = ["hivemind_exp/__init__.py", "hivemind_exp/gsm8k/__init__.py", "README.md", "LICENSE"]
_E0_CFGS = [f"hivemind_exp/configs/{hw}/grpo-{m}-deepseek-r1.yaml" for hw in ("gpu", "mac")
            for m in ("qwen-2.5-0.5b", "qwen-2.5-1.5b", "qwen-2.5-3b", "llama-3.2-1b")]
_TRIO = ["requirements-hivemind.txt", "requirements.txt", "requirements_gpu.txt"]
_MODAL = ["modal-login/package.json", "modal-login/.env", "modal-login/app/api/get-api-key/route.ts",
          "modal-login/app/api/register-peer/route.ts", "modal-login/app/api/submit-winner/route.ts",
          "modal-login/temp-data/.gitkeep"]
_MODAL_V3 = ["modal-login/app/api/set-api-key-activated/route.ts", "modal-login/app/api/get-api-key-status/route.ts",
             "modal-login/app/api/submit-reward/route.ts"]
_E1 = ["hivemind_exp/utils.py", "hivemind_exp/name_utils.py", "hivemind_exp/chain_utils.py",
       "hivemind_exp/contracts/SwarmCoordinator_0.2.json", "hivemind_exp/runner/__init__.py",
       "hivemind_exp/runner/gensyn/testnet_grpo_runner.py", "hivemind_exp/trainer/gensyn/__init__.py",
       "technical_report.pdf", "CONTRIBUTING.md",
       "hivemind_exp/configs/gpu/grpo-qwen-2.5-0.5b-deepseek-r1.yaml",
       "hivemind_exp/configs/mac/grpo-qwen-2.5-0.5b-deepseek-r1.yaml"]
_E2 = ["requirements-cpu.txt", "requirements-gpu.txt", "hivemind_exp/dapo/__init__.py",
       "hivemind_exp/contracts/SwarmCoordinator_0.4.2.json", "hivemind_exp/runner/memory_utils.py",
       "hivemind_exp/configs/gpu/grpo-header.yaml", "hivemind_exp/configs/gpu/grpo-big-header.yaml",
       "hivemind_exp/configs/gpu/generate_configs.py"]
_E2 += [f"hivemind_exp/configs/gpu/grpo-qwen-2.5-{p}b-deepseek-r1.yaml" for p in ("0.5", "1.5", "7")]
_E2 += [f"hivemind_exp/configs/gpu/grpo-qwen-2.5-{p}b-bnb-4bit-deepseek-r1.yaml" for p in ("32", "72")]
_GENRL_TOP = [".gitmodules", ".dockerignore", "containerfiles/swarm-node/swarm.containerfile", "docker-compose.yaml",
              "hivemind_exp/__init__.py", "hivemind_exp/chain_utils.py", "hivemind_exp/dht_utils.py",
              "hivemind_exp/hivemind_utils.py", "hivemind_exp/name_utils.py",
              "hivemind_exp/contracts/SwarmCoordinator_0.4.2.json", "README.md", "LICENSE"]
_E3 = ["genrl-swarm/src/genrl_swarm/__init__.py", "genrl-swarm/recipes/rgym/rg-swarm.yaml"]
_E4 = ["rgym_exp/__init__.py", "rgym_exp/runner/__init__.py", "rgym_exp/config/rg-swarm.yaml",
       "rgym_exp/src/__init__.py", "rgym_exp/src/manager.py", "rgym_exp/src/trainer.py", "rgym_exp/src/data.py",
       "rgym_exp/src/rewards.py", "rgym_exp/src/datasets.yaml"]
_E5 = ["modal-login/app/api/guess-answer/route.ts", "modal-login/app/api/bet-token-balance/route.ts",
       "modal-login/app/api/claim-reward/route.ts", "modal-login/app/lib/prg_contract.json",
       "rgym_exp/src/coordinator.py", "rgym_exp/src/prg_module.py", "rgym_exp/contracts/SwarmCoordinator_0.4.2.json"]
_E6 = ["code_gen_exp/__init__.py", "code_gen_exp/runner/__init__.py", "code_gen_exp/config/code-gen-swarm.yaml",
       "code_gen_exp/requirements.txt", "code_gen_exp/contracts/SwarmCoordinator_0.4.2.json"]
_E6 += [f"code_gen_exp/src/{m}.py" for m in ("__init__", "manager", "trainer", "solver_data", "solver_rewards",
                                               "proposer", "proposer_service", "coordinator")]

FILES: dict[str, list[str]] = {
    "E0": _HIVEMIND + _E0_CFGS + _TRIO + ["hivemind_exp/utils.py"],
    "E1": _HIVEMIND + _TRIO + _MODAL + _MODAL_V3 + _E1,
    "E2": _HIVEMIND + _MODAL + _MODAL_V3 + _E1[:-2] + _E2 + ["hivemind_exp/configs/mac/grpo-qwen-2.5-0.5b-deepseek-r1.yaml"],
    "E3": _GENRL_TOP + _MODAL + _MODAL_V3 + _E3,
    "E4": _GENRL_TOP + _MODAL + _MODAL_V3 + _E4,
    "E5": _GENRL_TOP + _MODAL + _MODAL_V3 + _E4 + _E5,
    "E6": _GENRL_TOP + _MODAL + _MODAL_V3 + _E6,
}

ENTRY_TEMPLATE = '''"""GSwarm emulator stand-in for RL Swarm's {gen} entry point: runs the emulated node."""

import os
import sys

_root = os.path.abspath(__file__)
for _ in range({ups} + 1):
    _root = os.path.dirname(_root)
sys.path.insert(0, os.path.join(_root, ".gswarm-emulator"))

import emu_node  # noqa: E402

if __name__ == "__main__":
    sys.exit(emu_node.main("{gen}", sys.argv[1:], _root))
'''


def env_file(generation: str, contract: str) -> str:
    """``modal-login/.env`` content: line 3 holds the contract (§2.4 ``.env`` table)."""
    key = "SWARM_CONTRACT_ADDRESS" if generation in ("E5", "E6") else "SMART_CONTRACT_ADDRESS"
    lines = ["NEXT_PUBLIC_ALCHEMY_API_KEY=emulated", "NEXT_PUBLIC_PAYMASTER_POLICY_ID=emulated", f"{key}={contract}"]
    if generation == "E5":
        lines.append("PRG_CONTRACT_ADDRESS=0x51D4db531ae706a6eC732458825465058fA23a35")
    return "\n".join(lines) + "\n"


def compose_file(generation: str) -> str:
    """docker-compose.yaml stand-in; E6 has an ``ollama`` service (§9.2, §11)."""
    text = "# GSwarm emulator placeholder\nservices:\n  fastapi:\n    build: .\n"
    if generation == "E6":
        text += "  ollama:\n    image: ollama/ollama:0.11.10\n"
    return text


# E3 installs its genrl-swarm clone with `pip install -e genrl-swarm[examples]` (generations.md §6.3). The
# emulated clone is a real, installable project with no dependencies: a stdlib-only build backend in the
# tree (PEP 517 ``backend-path``) makes the editable wheel, so `gswarm setup` works offline.
GENRL_PYPROJECT = """[build-system]
requires = []
build-backend = "emu_backend"
backend-path = ["_emu_build"]

[project]
name = "genrl-swarm"
version = "0.1.1"
description = "GSwarm emulator stand-in for the genrl-swarm clone (no real training)"

[project.optional-dependencies]
examples = []
"""

GENRL_BACKEND = '''"""PEP 517/660 build backend of the emulated genrl-swarm clone (standard library only)."""
import base64, hashlib, os, zipfile

NAME, VERSION = "genrl_swarm", "0.1.1"
DIST = f"{NAME}-{VERSION}.dist-info"
META = f"Metadata-Version: 2.1\\nName: genrl-swarm\\nVersion: {VERSION}\\nProvides-Extra: examples\\n"
WHEEL = "Wheel-Version: 1.0\\nGenerator: gswarm-emulator\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"


def _wheel(directory, files):
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    files = {**files, f"{DIST}/METADATA": META, f"{DIST}/WHEEL": WHEEL}
    record = []
    with zipfile.ZipFile(os.path.join(directory, name), "w") as zf:
        for path, text in files.items():
            data = text.encode()
            zf.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
        zf.writestr(f"{DIST}/RECORD", "\\n".join(record + [f"{DIST}/RECORD,,"]) + "\\n")
    return name


def _src():
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def get_requires_for_build_wheel(config_settings=None):
    return []


get_requires_for_build_editable = get_requires_for_build_wheel


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {"genrl_swarm_emulated.pth": _src() + "\\n"})


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {"genrl_swarm_emulated.pth": _src() + "\\n"})
'''
