"""Script mode's view of ``run_rl_swarm.sh``: what it inherits, how the model reaches it, its login wait (private).

Facts from ``shared/rlswarm/generations.md`` §2.3/§2.4, checked against the scripts of v0.3.2 … v0.7.0:
the script prints ">> Waiting for modal userData.json to be created..." *before* it looks for the file,
then "Waiting for API key to become activated..." on every testnet start, "Waiting for API key to be
activated..." per failed activation poll and "API key is activated! Proceeding..." once activated. Its
``read -p … MODEL_NAME`` overwrites an inherited ``MODEL_NAME`` and keeps the export flag, so an empty
answer would export an empty value. Used by :mod:`gswarm.supervisor.scriptmode` (issue #12).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

from gswarm.supervisor.spec import LaunchSpec, PromptAnswer

LOGIN_WAIT = "Waiting for modal userData.json to be created"
ACTIVATION_WAIT = "Waiting for API key to be activated"
LOGIN_DONE = "API key is activated"
USER_DATA = Path("modal-login/temp-data/userData.json")
MODEL_PROMPT = "model_name"  # PromptAnswer.name of the E3-E6 model prompt (gswarm.rlswarm.prompts)


def node_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the script inherits: ``environ`` (default ``os.environ``) without ``GSWARM_*`` names
    (GSwarm's own settings, e.g. ``GSWARM_HF_TOKEN``) and without ``MODEL_NAME``. Returns a new dict."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if not k.startswith("GSWARM_") and k != "MODEL_NAME"}


def with_model(spec: LaunchSpec, extra_env: Mapping[str, str] | None) -> tuple[tuple[PromptAnswer, ...], dict[str, str]]:
    """Move ``MODEL_NAME`` out of ``extra_env`` (the OOM ladder's model) into the answer of the model prompt;
    an empty value is dropped. Returns (prompts, remaining extra env)."""
    extra = dict(extra_env or {})
    model = extra.pop("MODEL_NAME", "")
    prompts = tuple(PromptAnswer(p.name, p.pattern, model, p.secret) if model and p.name == MODEL_PROMPT else p
                    for p in spec.prompts)
    return prompts, extra


def drop_login_preamble(tail: Any) -> None:
    """Remove from ``tail`` (a deque of output lines) everything up to the last "API key is activated" line.

    "Waiting for API key to become activated..." is printed on every testnet start, so left in the exit tail
    it classifies a trainer killed without a traceback as ``api_key_pending`` (stop and alert) instead of a
    SIGKILL.
    """
    lines = list(tail)
    done = next((i for i in range(len(lines) - 1, -1, -1) if LOGIN_DONE in lines[i]), None)
    if done is not None:
        tail.clear()
        tail.extend(lines[done + 1:])


class LoginWait:
    """Tracks whether the script waits for a browser login GSwarm cannot supply, and for how long.

    ``cwd``: the checkout (where ``modal-login/temp-data/userData.json`` is looked up when the wait line
    appears); ``monotonic()``: seconds. :meth:`line` returns the edge a line causes (True = wait began,
    False = it ended) or None.
    """

    def __init__(self, cwd: Path, monotonic: Callable[[], float]) -> None:
        self.cwd, self._mono = Path(cwd), monotonic
        self.waiting = False
        self._t0 = self._sum = 0.0

    @property
    def waited(self) -> float:
        """Seconds spent waiting, the current wait included."""
        return self._sum + (self._mono() - self._t0 if self.waiting else 0.0)

    def current(self) -> float | None:
        """Seconds of the wait going on now, or None."""
        return self._mono() - self._t0 if self.waiting else None

    def line(self, text: str) -> bool | None:
        if LOGIN_WAIT in text:
            return None if (self.cwd / USER_DATA).is_file() else self.set(True)  # printed before the check
        if ACTIVATION_WAIT in text:
            return self.set(True)
        if LOGIN_DONE in text:
            return self.set(False)
        return None

    def set(self, waiting: bool) -> bool | None:
        """Change the state; returns ``waiting`` when it changed, else None."""
        if waiting == self.waiting:
            return None
        self.waiting = waiting
        if waiting:
            self._t0 = self._mono()
        else:
            self._sum += self._mono() - self._t0
        return waiting
