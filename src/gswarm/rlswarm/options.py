"""Which RL Swarm option of the original GSwarm means something in which generation.

Sources: ``shared/rlswarm/generations.md`` §3–§9 (each era's script and launch)
and the summary table §12. An option given for a generation where it means
nothing is reported by :func:`inapplicable` (and shown by ``gswarm plan`` and in
the launch notes) — never silently dropped. Value validation is pydantic's job
(:class:`gswarm.config.Settings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

ALL = frozenset({"E0", "E1", "E2", "E3", "E4", "E5", "E6"})


@dataclass(frozen=True)
class OptionMeaning:
    """Where option ``field`` (a Settings field) applies and what it does there."""

    field: str
    generations: frozenset[str]
    meaning: str
    source: str


OPTIONS: tuple[OptionMeaning, ...] = (
    OptionMeaning("testnet", frozenset({"E1", "E2"}), "testnet [Y/n] prompt; local swarm otherwise",
                  "§4/§5 (E0 has no chain; E3-E6 force CONNECT_TO_TESTNET=true, §6)"),
    OptionMeaning("swarm", frozenset({"E2"}), "Math (A) / Math Hard (B) swarm: contract and game", "§5"),
    OptionMeaning("model_size", frozenset({"E2"}), "parameter count → config file", "§5"),
    OptionMeaning("model_name", frozenset({"E3", "E4", "E5", "E6"}), "MODEL_NAME env / model prompt", "§6-§9"),
    OptionMeaning("hf_token", frozenset({"E1", "E2", "E3", "E4", "E5", "E6"}), "push trained models to Hugging Face",
                  "§4-§9 (E0 has no Hugging Face option)"),
    OptionMeaning("org_id", frozenset({"E1", "E2", "E3", "E4", "E5", "E6"}), "modal-login ORG_ID", "§2.4"),
    OptionMeaning("identity_path", ALL, "swarm.pem (IDENTITY_PATH / --identity_path)", "§2.5"),
    OptionMeaning("contract_address", frozenset({"E2", "E3", "E4", "E5", "E6"}),
                  "coordinator contract (E2 --contract_address, E3-E6 SWARM_CONTRACT)",
                  "§2.4 (E1 hard-codes it in hivemind_exp/chain_utils.py)"),
    OptionMeaning("game", frozenset({"E2"}), "--game gsm8k|dapo", "§5"),
    OptionMeaning("config_path", frozenset({"E0", "E1", "E2"}), "--config YAML",
                  "§3-§5 (E3-E6 use a fixed Hydra config dir, §6/§7)"),
    OptionMeaning("cpu_only", frozenset({"E0", "E1", "E2"}), "CPU/mac config and requirements",
                  "§3-§5 (CPU_ONLY has no effect from E3 on, §14)"),
    OptionMeaning("requirements", ALL, "requirements file installed by gswarm setup", "§3-§9 installs"),
    OptionMeaning("prg_game", frozenset({"E5"}), "AI Prediction Market (PRG_GAME)", "§8"),
)
BY_FIELD = {o.field: o for o in OPTIONS}


def flag_name(field: str) -> str:
    """The command-line spelling of a Settings field: ``model_size`` → ``--model-size``."""
    return "--" + field.replace("_", "-")


def inapplicable(settings: Any, generation: str, explicitly_set: Iterable[str] | None = None) -> list[str]:
    """Messages for options that were given but mean nothing for ``generation``.

    ``explicitly_set``: names of Settings fields the user gave (flag, env var or
    file); default ``settings.model_fields_set`` (pydantic records exactly the
    fields that were passed to :func:`gswarm.config.load_settings`). Options with
    ``None`` values are skipped. ``unknown`` generations produce no messages
    (nothing is known to be meaningless there). Returns one sentence per option,
    in the table order, e.g. ``"--model-size means nothing for E6 (used by E2: …)"``.
    """
    if generation not in ALL:
        return []
    given = set(settings.model_fields_set if explicitly_set is None else explicitly_set)
    out = []
    for opt in OPTIONS:
        if opt.field not in given or getattr(settings, opt.field, None) is None:
            continue
        if generation not in opt.generations:
            used = ", ".join(sorted(opt.generations))
            out.append(f"{flag_name(opt.field)} means nothing for {generation} and is ignored "
                       f"(used by {used}: {opt.meaning})")
    return out
