"""Lazy bridge to ``gswarm.logs.classify`` with a fallback when it is missing.

Live path: every line goes to a ``StreamClassifier`` (one per start);
``on_line`` returns a Classification for a *live* incident (e.g. repeated chain
rejections), collected in :attr:`ExitClassifier.live` for the watcher. At exit:
``StreamClassifier.result()`` adjusted for the exit status by
``policy.effective`` (SIGKILL without a traceback → likely OOM killer; that logic
is the failures area's). Without the classifier module every failure is
``unknown_crash`` (exit 0 → ``clean_exit``), classified from a 400-line tail.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Callable, Sequence

from gswarm.events import Category, Recovery, Severity
from gswarm.supervisor import policy
from gswarm.supervisor.policy import Classification

log = logging.getLogger(__name__)
TAIL_LINES = 400


class ExitClassifier:
    """``feed(texts)`` on the live path, ``classify(exit_code, signal)`` at exit.

    ``on_live(classification)`` is called for each live incident (may be None).
    """

    def __init__(self, generation: str | None, on_live: Callable[[Any], None] | None = None) -> None:
        self.generation = generation
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._stream: Any = None
        self._on_live = on_live
        try:
            from gswarm.logs.classify import Classifier, StreamClassifier

            self._stream = StreamClassifier(Classifier.from_package(), generation)
        except Exception as exc:  # module not written yet, or its rules fail to load
            log.debug("classifier unavailable, using fallback: %s", exc)
        self.feed = self._feed_stream if self._stream is not None else self.tail.extend

    def _feed_stream(self, texts: Sequence[str]) -> None:
        self.tail.extend(texts)
        on_line = self._stream.on_line
        for text in texts:
            hit = on_line(text)
            if hit is not None and self._on_live is not None:
                try:
                    self._on_live(hit)
                except Exception:
                    log.exception("live incident handler failed")

    def classify(self, exit_code: int | None, signal: int | None) -> Any:
        """The Classification of the run that just ended (duck-typed like policy.Classification)."""
        if self._stream is not None:
            try:
                cls = self._stream.result()
                effective = getattr(policy, "effective", None)
                return effective(policy.ExitInfo(exit_code, signal, 0.0), cls) if effective else cls
            except Exception:
                log.exception("classifier failed; using fallback")
        return fallback(list(self.tail), exit_code, signal)


def fallback(lines: Sequence[str], exit_code: int | None, signal: int | None) -> Classification:
    """unknown_crash with the last lines as evidence (clean_exit for exit 0)."""
    if exit_code == 0:
        return Classification(Category.CLEAN_EXIT, Recovery.RESTART, Severity.INFO, "fallback.clean_exit",
                              tuple(lines[-3:]), "The node exited with status 0 without being asked to.")
    how = f"signal {signal}" if signal else f"exit status {exit_code}"
    return Classification(Category.UNKNOWN_CRASH, Recovery.BACKOFF, Severity.ERROR, "fallback.unknown",
                          tuple(lines[-5:]), f"The node ended with {how}; see the captured output for the cause.")
