"""Which generation (era) of RL Swarm a checkout is.

Implements the decision list of ``shared/rlswarm/generations.md`` §1 (first
match wins) on the files present in the checkout, plus the finer sub-version
probes of the same section (substring searches in ``run_rl_swarm.sh``).

Generations: ``E0`` (pre-testnet gsm8k), ``E1`` (testnet gsm8k + modal-login),
``E2`` (Math/Math Hard, DAPO), ``E3`` (cloned genrl-swarm), ``E4`` (rgym_exp),
``E5`` (rgym_exp + AI Prediction Market), ``E6`` (CodeZero code_gen_exp) and
``unknown`` (a ``run_rl_swarm.sh`` without a known layout; runs in script mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gswarm.errors import CheckoutError

GENERATIONS = ("E0", "E1", "E2", "E3", "E4", "E5", "E6")
UNKNOWN = "unknown"
TESTNET_GENERATIONS = frozenset({"E1", "E2", "E3", "E4", "E5", "E6"})
SCRIPT = "run_rl_swarm.sh"

# substring of run_rl_swarm.sh -> fact it proves (generations.md §1, "Finer sub-version probes")
_PROBES: tuple[tuple[str, str], ...] = (
    ("set -euo pipefail", "v0.3.1+: errexit and EXIT-trap cleanup"),
    ("get-api-key-status", "v0.3.0+: waits for API-key activation"),
    ("logs/yarn.log", "2025-05-19+: logs/ directory"),
    ("yarn build", "2025-05-23+: modal-login built, then yarn start"),
    ("errnotify", "2025-05-30+: red error marker (ERR trap)"),
    ("git submodule update", "E3 pre-release with a private submodule (not runnable publicly)"),
    ('if [ -n "${HF_TOKEN}" ]', "a non-empty HF_TOKEN skips the Hugging Face prompt (v0.2.0 … 2025-08-13)"),
    ("export PRG_GAME=true", "2025-08-21+: prediction-market prompt is opt-out [Y/n]"),
    ("hf auth logout", "2025-11-10+: hf auth logout right before launch"),
)


@dataclass(frozen=True)
class Detection:
    """Result of :func:`detect`.

    ``generation``: ``E0``…``E6`` or ``unknown``. ``evidence``: checkout-relative
    paths (and ``run_rl_swarm.sh contains '…'`` probes) that proved it.
    ``facts``: extra sub-version facts from the script probes (human readable).
    """

    generation: str
    evidence: tuple[str, ...]
    facts: tuple[str, ...] = field(default_factory=tuple)

    @property
    def testnet(self) -> bool:
        """True for generations that log in through modal-login (E1–E6; generations.md §2.4)."""
        return self.generation in TESTNET_GENERATIONS


def _script_text(checkout: Path) -> str:
    try:
        return (checkout / SCRIPT).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _decide(checkout: Path, script: str) -> tuple[str, list[str]]:
    """The §1 decision list; returns (generation, evidence)."""

    def has(rel: str) -> bool:
        return (checkout / rel).exists()

    if has("code_gen_exp"):
        return "E6", ["code_gen_exp/"]
    if has("rgym_exp"):
        route = "modal-login/app/api/guess-answer/route.ts"
        if has(route):
            return "E5", ["rgym_exp/", route]
        if "PRG_CONTRACT" in script:
            return "E5", ["rgym_exp/", f"{SCRIPT} contains 'PRG_CONTRACT'"]
        return "E4", ["rgym_exp/", f"no {route}"]
    gsm8k = has("hivemind_exp/gsm8k")
    if not gsm8k and "genrl-swarm" in script:
        return "E3", ["no hivemind_exp/gsm8k/", f"{SCRIPT} contains 'genrl-swarm'"]
    if gsm8k:
        for rel in ("requirements-gpu.txt", "hivemind_exp/dapo"):
            if has(rel):
                return "E2", ["hivemind_exp/gsm8k/", rel + ("/" if rel.endswith("dapo") else "")]
        if has("modal-login"):
            return "E1", ["hivemind_exp/gsm8k/", "modal-login/"]
        return "E0", ["hivemind_exp/gsm8k/", "no modal-login/"]
    return UNKNOWN, [SCRIPT, "no known layout (code_gen_exp/, rgym_exp/, hivemind_exp/gsm8k/, genrl-swarm)"]


def detect(checkout: Path) -> Detection:
    """Detect the generation of the RL Swarm checkout at ``checkout``.

    Follows generations.md §1's decision list exactly (first match wins):
    ``code_gen_exp/`` → E6; ``rgym_exp/`` → E5 with the ``guess-answer`` route
    (or a script mentioning ``PRG_CONTRACT``), else E4; no ``hivemind_exp/gsm8k/``
    and a script mentioning ``genrl-swarm`` → E3; ``hivemind_exp/gsm8k/`` →
    E2 (``requirements-gpu.txt`` or ``hivemind_exp/dapo/``), E1 (``modal-login/``),
    else E0. A folder with ``run_rl_swarm.sh`` and none of these is ``unknown``.

    Raises :class:`CheckoutError` when ``checkout`` does not exist, is not a
    folder, or has neither ``run_rl_swarm.sh`` nor a known layout.
    """
    checkout = Path(checkout)
    if not checkout.is_dir():
        what = "it is a file, not a folder" if checkout.exists() else "the folder does not exist"
        raise CheckoutError(f"{checkout} is not an RL Swarm checkout: {what}; pass --rl-swarm-dir with the folder "
                            "where you cloned gensyn-ai/rl-swarm")
    script = _script_text(checkout)
    generation, evidence = _decide(checkout, script)
    has_script = (checkout / SCRIPT).is_file()
    if generation == UNKNOWN and not has_script:
        raise CheckoutError(
            f"{checkout} is not an RL Swarm checkout: no {SCRIPT} and none of code_gen_exp/, rgym_exp/, "
            f"hivemind_exp/gsm8k/; pass --rl-swarm-dir pointing at a clone of gensyn-ai/rl-swarm"
        )
    if has_script and generation != UNKNOWN:
        evidence.append(SCRIPT)
    facts = tuple(meaning for probe, meaning in _PROBES if probe in script)
    return Detection(generation, tuple(evidence), facts)


def script_probes(checkout: Path) -> dict[str, bool]:
    """Every §1 sub-version probe of ``run_rl_swarm.sh`` → whether it is present (missing script → all False)."""
    script = _script_text(Path(checkout))
    return {probe: probe in script for probe, _ in _PROBES}
