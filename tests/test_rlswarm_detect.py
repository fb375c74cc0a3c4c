"""Generation detection (generations.md §1) on hand-built layouts and emulated checkouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from gswarm.emulator.checkout import init_checkout
from gswarm.errors import CheckoutError
from gswarm.rlswarm.generations import detect, script_probes


def make(root: Path, *paths: str, script: str | None = "#!/bin/bash\n") -> Path:
    """A minimal layout: folders end with '/', files get placeholder text."""
    for rel in paths:
        p = root / rel
        if rel.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("x\n")
    if script is not None:
        (root / "run_rl_swarm.sh").write_text(script)
    return root


@pytest.mark.parametrize(
    ("paths", "script", "generation", "evidence"),
    [
        (["hivemind_exp/gsm8k/", "requirements.txt"], "#!/bin/bash\n", "E0",
         ("hivemind_exp/gsm8k/", "no modal-login/", "run_rl_swarm.sh")),
        (["hivemind_exp/gsm8k/", "modal-login/"], "#!/bin/bash\n", "E1",
         ("hivemind_exp/gsm8k/", "modal-login/", "run_rl_swarm.sh")),
        (["hivemind_exp/gsm8k/", "modal-login/", "requirements-gpu.txt"], "#!/bin/bash\n", "E2",
         ("hivemind_exp/gsm8k/", "requirements-gpu.txt", "run_rl_swarm.sh")),
        (["hivemind_exp/gsm8k/", "hivemind_exp/dapo/"], "#!/bin/bash\n", "E2",
         ("hivemind_exp/gsm8k/", "hivemind_exp/dapo/", "run_rl_swarm.sh")),
        (["hivemind_exp/chain_utils.py"], 'git clone https://github.com/gensyn-ai/genrl-swarm.git\n', "E3",
         ("no hivemind_exp/gsm8k/", "run_rl_swarm.sh contains 'genrl-swarm'", "run_rl_swarm.sh")),
        (["rgym_exp/runner/swarm_launcher.py"], "#!/bin/bash\n", "E4",
         ("rgym_exp/", "no modal-login/app/api/guess-answer/route.ts", "run_rl_swarm.sh")),
        (["rgym_exp/", "modal-login/app/api/guess-answer/route.ts"], "#!/bin/bash\n", "E5",
         ("rgym_exp/", "modal-login/app/api/guess-answer/route.ts", "run_rl_swarm.sh")),
        (["rgym_exp/"], 'export PRG_CONTRACT="0x1"\n', "E5",
         ("rgym_exp/", "run_rl_swarm.sh contains 'PRG_CONTRACT'", "run_rl_swarm.sh")),
        (["code_gen_exp/", "rgym_exp/", "hivemind_exp/gsm8k/"], "#!/bin/bash\n", "E6",
         ("code_gen_exp/", "run_rl_swarm.sh")),
        (["hivemind_exp/chain_utils.py"], "#!/bin/bash\necho hello\n", "unknown",
         ("run_rl_swarm.sh", "no known layout (code_gen_exp/, rgym_exp/, hivemind_exp/gsm8k/, genrl-swarm)")),
    ],
)
def test_decision_list(tmp_path: Path, paths, script, generation, evidence) -> None:
    det = detect(make(tmp_path, *paths, script=script))
    assert (det.generation, det.evidence) == (generation, evidence)


def test_gsm8k_wins_over_genrl_mention(tmp_path: Path) -> None:
    """Rule 3 needs hivemind_exp/gsm8k/ absent: a gsm8k checkout mentioning genrl-swarm is still E0."""
    assert detect(make(tmp_path, "hivemind_exp/gsm8k/", script="# genrl-swarm\n")).generation == "E0"


def test_layout_without_script_still_detected(tmp_path: Path) -> None:
    assert detect(make(tmp_path, "code_gen_exp/runner/", script=None)).evidence == ("code_gen_exp/",)


@pytest.mark.parametrize("generation", ["E0", "E1", "E2", "E3", "E4", "E5", "E6"])
def test_emulated_checkouts_detected(tmp_path: Path, generation: str) -> None:
    assert detect(init_checkout(tmp_path / "co", generation)).generation == generation


def test_not_a_checkout(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(CheckoutError, match=r"is not an RL Swarm checkout: no run_rl_swarm\.sh.*--rl-swarm-dir") as exc:
        detect(tmp_path)
    assert exc.value.exit_code == 2


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckoutError, match="does not exist"):
        detect(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckoutError, match=r"file is not an RL Swarm checkout: it is a file, not a folder; pass --rl-swarm-dir"):
        detect(tmp_path / "file")


def test_sub_version_probes(tmp_path: Path) -> None:
    make(tmp_path, "code_gen_exp/", script="set -euo pipefail\ncurl get-api-key-status\nhf auth logout\n")
    probes = script_probes(tmp_path)
    assert probes["set -euo pipefail"] and probes["get-api-key-status"] and probes["hf auth logout"]
    assert not probes["errnotify"] and not probes["export PRG_GAME=true"]
    assert detect(tmp_path).facts == (
        "v0.3.1+: errexit and EXIT-trap cleanup",
        "v0.3.0+: waits for API-key activation",
        "2025-11-10+: hf auth logout right before launch",
    )
