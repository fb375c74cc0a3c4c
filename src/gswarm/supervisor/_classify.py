"""Lazy bridge to ``gswarm.logs.classify`` with a fallback when it is missing.

The watcher keeps the last :data:`TAIL_LINES` lines of output (a deque: one
C-speed ``extend`` per batch, no Python work per line) and classifies them once,
at exit, with ``Classifier.classify_lines(lines, generation, exit_code=,
signal=)`` — the classifier/policy decide e.g. "SIGKILL without traceback →
likely OOM killer". Live incidents (a StreamClassifier per line) are the health
service's job (``gswarm.monitor.health``), which sends commands to the watcher.
Without the classifier module every failure is ``unknown_crash`` (exit 0 →
``clean_exit``).
"""

from __future__ import annotations

import inspect
import logging
from collections import deque
from typing import Any, Sequence

from gswarm.events import Category, Recovery, Severity
from gswarm.supervisor.policy import Classification

log = logging.getLogger(__name__)
TAIL_LINES = 2000


class ExitClassifier:
    """``feed(texts)`` on the live path (one deque extend), ``classify(exit_code, signal)`` at exit."""

    def __init__(self, generation: str | None) -> None:
        self.generation = generation
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._impl: Any = None
        self._kwargs: set[str] = set()
        try:
            from gswarm.logs.classify import Classifier

            self._impl = Classifier.from_package()
            self._kwargs = set(inspect.signature(self._impl.classify_lines).parameters)
        except Exception as exc:  # module not written yet, or its rules fail to load
            log.debug("classifier unavailable, using fallback: %s", exc)

    def feed(self, texts: Sequence[str]) -> None:
        """Keep the last :data:`TAIL_LINES` of ``texts`` (one C-level extend of at most that many)."""
        self.tail.extend(texts[-TAIL_LINES:])

    def classify(self, exit_code: int | None, signal: int | None) -> Any:
        """The Classification of the run that just ended (duck-typed like policy.Classification)."""
        lines: Sequence[str] = list(self.tail)
        if self._impl is not None:
            kwargs = {k: v for k, v in (("exit_code", exit_code), ("signal", signal)) if k in self._kwargs}
            try:
                return self._impl.classify_lines(lines, self.generation, **kwargs)
            except Exception:
                log.exception("classifier failed; using fallback")
        return fallback(lines, exit_code, signal)


def fallback(lines: Sequence[str], exit_code: int | None, signal: int | None) -> Classification:
    """unknown_crash with the last lines as evidence (clean_exit for exit 0)."""
    if exit_code == 0:
        return Classification(Category.CLEAN_EXIT, Recovery.RESTART, Severity.INFO, "fallback.clean_exit",
                              tuple(lines[-3:]), "The node exited with status 0 without being asked to.")
    how = f"signal {signal}" if signal else f"exit status {exit_code}"
    return Classification(Category.UNKNOWN_CRASH, Recovery.BACKOFF, Severity.ERROR, "fallback.unknown",
                          tuple(lines[-5:]), f"The node ended with {how}; see the captured output for the cause.")
