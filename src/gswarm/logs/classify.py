"""Classify RL Swarm node output into a failure category with evidence, recovery and advice.

The rules are data (``rules.toml`` next to this module; fields documented at its top), built from
the real failure corpus ``shared/failures/`` (INDEX.md markers, case numbers in the advice) and
``generations.md`` §2.6/§10/§12/§14. Lines first pass a cheap prefilter (a few dozen gate words, see
``_gate.py``); only those lines are matched against the rules, with multi-line context (``near``
windows, ``all`` patterns, repeat/round-gap detectors). The last decisive failure wins; generic wrappers
(bare traceback, hydra's "Error executing job", the script's ">> An error was detected" banner) only
decide when nothing specific matched, and benign lines never make a failure.

``Classifier.classify_lines`` is the batch path (``gswarm diagnose``, tests); ``StreamClassifier`` is
the live path fed line by line by the supervisor: ``on_line`` is O(1) for ordinary lines and returns a
Classification only for live incidents; ``result()`` classifies the recent output at exit time.
Longer than ~150 lines: the two public classes share one compiled table; loading, gating and rule
evaluation are in ``_rules.py``, ``_gate.py`` and ``_engine.py``.
"""

from __future__ import annotations

import operator
import re
import time
from collections import deque
from functools import lru_cache
from itertools import repeat
from pathlib import Path
from typing import Any, Iterable, Sequence

from gswarm.ansi import strip_ansi
from gswarm.logs._engine import Hit, evaluate, evidence
from gswarm.logs._gate import build_gate
from gswarm.logs._rules import Pat, Rule, RuleSet, load_rules
from gswarm.logs._structure import Structure, parse as parse_structure
from gswarm.supervisor.policy import Classification, ExitInfo, effective
from gswarm.wordscan import WordSet

RULES_FILE = Path(__file__).with_name("rules.toml")
STRUCT_TAIL = 2000  # lines at the end of the output read structurally (the watcher's exit tail is 2000 lines)
_GATED = ("any", "all", "live_anchor", "reset", "gap_from")  # `near` is read around anchors


class Classifier:
    """Compiled rule table. Build with :meth:`from_package` or :meth:`from_file` (ConfigError on bad rules)."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.rules: tuple[Rule, ...] = ruleset.rules
        self._all = _Compiled(ruleset, lambda r: True)
        self._stream = _Compiled(ruleset, lambda r: r.stream)

    @classmethod
    def from_package(cls) -> "Classifier":
        """The rule table shipped in the package (parsed once per process)."""
        return _package_classifier()

    @classmethod
    def from_file(cls, path: Path | str) -> "Classifier":
        """Rules from ``path``. Raises ConfigError naming the file, the rule id and the field."""
        return cls(load_rules(Path(path)))

    def classify_lines(self, lines: Sequence[str], generation: str | None = None, *,
                       exit_code: int | None = None, signal: int | None = None) -> Classification:
        """Classify a whole log (a sequence of lines, newlines optional); ``generation`` E0..E6 or None.

        Returns ``Classification()`` (category ``none``) when nothing matched. With ``exit_code``/``signal``
        of the run (the watcher passes them) the result accounts for the exit: SIGKILL without decisive
        output → ``system_oom_killed``, status 0 with nothing found → ``clean_exit`` (``policy.effective``).
        """
        if any(map(operator.contains, lines, repeat("\x1b"))):  # raw terminal output: colours would hide markers
            lines = [strip_ansi(line) for line in lines]
        text_of = (lambda i: lines[i] if 0 <= i < len(lines) else None)
        st = parse_structure(list(enumerate(lines[-STRUCT_TAIL:], max(0, len(lines) - STRUCT_TAIL))), exit_code, signal)
        cls = self._all.classify(self._all.scan(enumerate(lines)), generation, text_of, st)
        if exit_code is None and signal is None:
            return cls
        return effective(ExitInfo(exit_code, signal, 0.0), cls)

    def stream(self, generation: str | None = None, **kwargs: Any) -> "StreamClassifier":
        """A new :class:`StreamClassifier` sharing this compiled table."""
        return StreamClassifier(self, generation, **kwargs)


class _Compiled:
    """Gate + per-word pattern index for the rules selected by ``keep``."""

    def __init__(self, ruleset: RuleSet, keep) -> None:
        self.rules = tuple(r for r in ruleset.rules if keep(r))
        pats: dict[str, Pat] = {p.source: p for r in self.rules for f in _GATED for p in getattr(r, f)}
        words = sorted({w for p in pats.values() for w in p.gates})
        self.words = tuple(words)
        self.by_word = {w: tuple(p for p in pats.values() if w in p.gates) for w in words}
        self.anchored = tuple(p for p in pats.values() if p.anchored)
        # a matched gate word also stands for the gate words it contains
        self.expand = {w: tuple(v for v in words if v in w) for w in words}
        gate = build_gate(set(words))
        self.gate = gate.search if gate else (lambda s, pos=0: None)
        start = re.compile("|".join(f"(?:{p.rx.pattern})" for p in self.anchored)) if self.anchored else None
        self.start = start.match if start else (lambda s: None)
        # the same on a whole chunk ("\n"-joined lines): ^ at every line start. May pass more than the
        # per-line start (``\s`` can cross a newline) but never less, so a miss means no line starts so.
        self.start_any = re.compile(start.pattern, re.M).search if start else None

    def scan(self, items: Iterable[tuple[int, str]]) -> dict[str, list[int]]:
        """Pattern source -> sorted indexes of the lines it matches; only gate-passing lines are tested,
        and only against the patterns of the gate words found in them (every occurrence, overlaps too)."""
        search, start, expand, by_word, anchored = self.gate, self.start, self.expand, self.by_word, self.anchored
        found: dict[str, list[int]] = {}
        for idx, text in items:
            m = search(text)
            if m is None and start(text) is None:
                continue
            cands = set(anchored)
            while m is not None:
                for w in expand[m.group()]:
                    cands.update(by_word[w])
                m = search(text, m.start() + 1)
            for pat in cands:
                if pat.rx.search(text):
                    found.setdefault(pat.source, []).append(idx)
        return found

    def classify(self, found: dict[str, list[int]], generation: str | None, text_of, st: Structure | None = None) -> Classification:
        hit = evaluate((r for r in self.rules if r.applies(generation)), found, text_of, st)
        return to_classification(hit, text_of, st) if hit else Classification()


def to_classification(hit: Hit, text_of, st: Structure | None = None) -> Classification:
    """The public :class:`Classification` of an engine hit; a structural hit's advice names the final exception and
    its raising frame (``{exception}``, ``{frame}`` in the rule's advice are filled in)."""
    r = hit.rule
    advice = r.advice
    if r.structural and st is not None and ("{exception}" in advice or "{frame}" in advice):
        exc = st.exception
        frame = exc.frame if exc else None
        where = f"{frame.path}:{frame.line} ({frame.kind}{', ' + frame.module if frame.module else ''})" if frame else "no frame shown"
        advice = advice.replace("{exception}", (exc.text if exc else "none")[:300]).replace("{frame}", where)
    return Classification(r.category, r.recovery, r.severity, r.id, evidence(hit, text_of), advice)


@lru_cache(maxsize=1)
def _package_classifier() -> Classifier:
    return Classifier(load_rules(RULES_FILE))


class StreamClassifier:
    """Incremental classifier for one run of the node (create a new one per start).

    ``ring`` recent lines are kept for evidence context, at most ``keep`` gate-passing lines for
    classification, and ``result()`` looks at the last ``tail`` lines only (so an old, survived
    incident does not explain a later exit). Live incidents: rules with ``live = N`` fire after N
    hits (within ``live_window`` seconds of ``now`` when given; ``now`` defaults to time.monotonic()).
    ``live_only`` (the health service's stream): only live incidents are wanted, so :meth:`on_lines`
    passes over a chunk in which no live anchor can match after a few substring scans (the anchors'
    own texts: ~0.2 ms per MiB instead of ~20 ms for the full gate), and :meth:`result` is unavailable.
    Its live incidents are the full stream's; their evidence may hold an older hit line that the full
    stream had already pushed out of its ``keep`` gate-passing lines (hits far apart, no time window).
    """

    def __init__(self, classifier: Classifier | None = None, generation: str | None = None,
                 ring: int = 256, keep: int = 4000, tail: int = 2000, live_only: bool = False) -> None:
        self.classifier = classifier or Classifier.from_package()
        self.generation = generation
        self._c = self.classifier._stream
        self._gate = self._c.gate
        self._start = self._c.start if self._c.anchored else None
        self._ring: deque[str] = deque(maxlen=ring)
        self._push = self._ring.append  # hot path: one bound method, no attribute chain per line
        self._trig: deque[tuple[int, str]] = deque(maxlen=keep)
        self._tail = tail
        self._n = 0
        self._live = [r for r in self._c.rules if r.live and r.applies(generation)]
        self._live_hits: dict[str, deque[tuple[float, int]]] = {r.id: deque() for r in self._live}
        self.live_only = live_only
        self._live_words = _live_words(self._live) if live_only else None

    @property
    def lines_seen(self) -> int:
        """Number of lines fed so far."""
        return self._n

    def on_line(self, text: str, now: float | None = None) -> Classification | None:
        """Feed one output line (ANSI-stripped). Returns a Classification for a live incident, else None."""
        self._n += 1
        self._push(text)
        if self._gate(text) is None:
            start = self._start
            if start is None or start(text) is None:
                return None
        self._trig.append((self._n, text))
        return self._check_live(text, now) if self._live else None

    def on_lines(self, texts: Sequence[str], now: float | None = None, joined: str | None = None) -> list[Classification]:
        """Feed the lines of one chunk (``joined``: ``"\\n".join(texts)`` if already built); the live
        incidents found, in order. Same result as :meth:`on_line` per line, but a chunk in which no
        gate word occurs (nearly all of them) costs two C-level searches instead of a loop."""
        if joined is None:
            joined = "\n".join(texts)
        words = self._live_words
        if words is not None:
            passes = words.any_in(joined)
        else:
            start_any = self._c.start_any
            passes = self._gate(joined) is not None or (start_any is not None and start_any(joined) is not None)
        if not passes:
            self._n += len(texts)
            self._ring.extend(texts[-self._ring.maxlen:])  # type: ignore[misc] # the same ring, fewer pops
            return []
        on_line = self.on_line
        return [c for c in (on_line(t, now) for t in texts) if c is not None]

    def _check_live(self, text: str, now: float | None) -> Classification | None:
        for rule in self._live:
            pats = rule.live_anchor or rule.any
            if not any(p.rx.search(text) for p in pats) or any(u.rx.search(text) for u in rule.unless):
                continue
            hits = self._live_hits[rule.id]
            if hits and self._n - hits[-1][1] <= rule.live_gap:
                continue  # same incident (e.g. the wrapper line and the HTTP error line of one submission)
            ts = time.monotonic() if now is None else now
            hits.append((ts, self._n))
            while rule.live_window and hits and ts - hits[0][0] > rule.live_window:
                hits.popleft()
            if len(hits) >= rule.live:
                lines = tuple(i for _, i in list(hits)[-3:])
                hits.clear()
                return to_classification(Hit(rule, self._n, lines), self._text_of)
        return None

    def _text_of(self, i: int) -> str | None:
        back = self._n - i
        if 0 <= back < len(self._ring):
            return self._ring[len(self._ring) - 1 - back]
        for j, text in reversed(self._trig):
            if j == i:
                return text
            if j < i:
                break
        return None

    def result(self) -> Classification:
        """Classification of the recent output (call at exit); category ``none`` if nothing matched.

        Raises RuntimeError for a ``live_only`` stream (it skips the chunks no live rule can match)."""
        if self.live_only:
            raise RuntimeError("a live_only StreamClassifier reports live incidents only; use Classifier.classify_lines")
        first = self._n - self._tail
        recent = {i: s for i, s in self._trig if i > first}
        ring, n = self._ring, self._n

        def text_of(i: int) -> str | None:
            back = n - i
            return ring[len(ring) - 1 - back] if 0 <= back < len(ring) else recent.get(i)

        known = dict(recent)
        known.update((i, t) for i, t in zip(range(n - len(ring) + 1, n + 1), ring) if i > first)
        st = parse_structure(sorted(known.items()))
        return self._c.classify(self._c.scan(recent.items()), self.generation, text_of, st)


def _live_words(rules: Sequence[Rule]) -> WordSet | None:
    """Substrings of which every line a live rule's anchor matches holds one: the whole text of a plain
    anchor (a long needle: the fastest C-level ``in``), the gate words of a regex anchor; None (no
    shortcut: the full gate) when a regex anchor has no gate word."""
    words: set[str] = set()
    for rule in rules:
        for pat in rule.live_anchor or rule.any:
            if not pat.source.startswith("re:"):
                words.add(pat.source)
            elif pat.gates:
                words |= pat.gates
            else:
                return None
    return WordSet(sorted(w for w in words if not any(v != w and v in w for v in words)))  # "Error" covers "Error …"
