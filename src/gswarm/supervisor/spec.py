"""The launch spec: what the supervisor starts, built by ``gswarm.rlswarm.launch``.

This is the contract between RL Swarm knowledge (which argv, env, prompts for
which generation) and process management (how to run it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

MASK = "***"


@dataclass(frozen=True)
class PromptAnswer:
    """An interactive prompt of ``run_rl_swarm.sh`` and the line GSwarm answers.

    ``pattern`` is a regex searched in ANSI-stripped output (complete lines and
    partial lines flushed after ``prompt_idle``). ``answer`` is sent followed by a
    newline. ``secret`` answers are masked in plans and logs. Source of the
    texts: ``shared/rlswarm/generations.md`` §3-§9.
    """

    name: str
    pattern: str
    answer: str
    secret: bool = False

    def shown(self) -> dict[str, str]:
        return {"name": self.name, "pattern": self.pattern, "answer": MASK if self.secret else self.answer}


@dataclass(frozen=True)
class LaunchSpec:
    """Everything needed to start the node once.

    ``env`` holds only the variables GSwarm sets on top of its own environment;
    names in ``secret_env`` are masked by :meth:`masked_env`. ``use_pty`` runs the
    child under a pseudo-terminal (script mode). ``watch_pattern`` (script mode)
    is a regex matched against the command lines of the script's descendants to
    find the Python trainer whose exit is the real outcome.
    """

    argv: tuple[str, ...]
    cwd: Path
    env: dict[str, str]
    mode: Literal["direct", "script"]
    generation: str
    evidence: tuple[str, ...] = ()
    prompts: tuple[PromptAnswer, ...] = ()
    use_pty: bool = False
    secret_env: frozenset[str] = frozenset()
    watch_pattern: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def masked_env(self) -> dict[str, str]:
        return {k: (MASK if k in self.secret_env and v not in ("", "None") else v) for k, v in self.env.items()}

    def to_json(self) -> dict:
        return {
            "generation": self.generation,
            "evidence": list(self.evidence),
            "mode": self.mode,
            "argv": list(self.argv),
            "cwd": str(self.cwd),
            "env": self.masked_env(),
            "prompts": [p.shown() for p in self.prompts],
            "use_pty": self.use_pty,
            "watch_pattern": self.watch_pattern,
            "notes": list(self.notes),
        }
