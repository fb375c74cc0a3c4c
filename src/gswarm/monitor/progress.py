"""Training progress from the node's output and its log files → ``ProgressUpdate`` events.

Two sources feed one :class:`ProgressTracker`: ``OutputBatch`` events (inline bus
subscriber, every line of the batch; a single prefilter regex rejects most lines;
a lone ``OutputLine`` is accepted too) and the files the node
writes, followed with rotation/truncation handled (E2 ``logs/swarm.log``, E3–E6
``logs/swarm_launcher.log``, E3/E4 ``logs/training_<animal>.log``; generations.md
§5.6–§9.6 and §13.7). The same fact seen on stdout and in a file is recorded once
(dedupe key: kind, round, stage, identity, detail). ``advanced`` is True when the
position (round, stage, finished?) moves forward — a jump of several rounds is an
advance (failure corpus 056: slower nodes skip rounds). "Already finished round"
(waiting) is never an advance and is re-published at most every ``repeat_after`` s.
The service also hands the model the node reports ("Using Model: <hf id>", E3–E6, generations.md §6.6/§9.6)
to the restart policy's OOM ladder as ``History.extra["model_in_use"]``, cleared at every process start.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from gswarm import events as ev
from gswarm.ansi import strip_ansi
from gswarm.monitor._progress_rules import Fact, chunk_facts, family_of, model_in_use, parse_line
from gswarm.monitor.follow import FileFollower, GlobFollower
from gswarm.supervisor._policy_oom import IN_USE  # the History.extra key the OOM ladder reads

log = logging.getLogger(__name__)
_POSITIONAL = ("join", "round", "stage", "stage_done")
_CONTEXT = ("reward", "bet", "claim", "winners", "waiting", "peer", "hello", "swarm")


class ProgressTracker:
    """State of one node's training: ``round``, ``stage``, ``round_total``, ``animal``, ``peer_id``.

    ``feed(text, ts)`` → a ``ProgressUpdate`` or None (not a marker, or a duplicate).
    ``new_run(generation)`` at every process start: picks the parser family and lets
    the first position of the new run count as an advance (it becomes the baseline
    when the swarm's round went backwards).
    """

    def __init__(self, node: str, generation: str | None = None, repeat_after: float = 600.0) -> None:
        self.node = node
        self.family = family_of(generation)
        self.repeat_after = repeat_after
        self.round: int | None = None
        self.stage: int | None = None
        self.round_total: int | None = None
        self.animal: str | None = None
        self.peer_id: str | None = None
        self.best: tuple[int, int, int] | None = None
        self._new_run = True
        self._seen: OrderedDict[tuple, float] = OrderedDict()

    def new_run(self, generation: str | None) -> None:
        """A new process started: reset the dedupe memory, keep the best position."""
        self.family = family_of(generation)
        self._new_run = True
        self._seen.clear()

    def feed(self, text: str, ts: float) -> ev.ProgressUpdate | None:
        """Parse one ANSI-stripped line received at ``ts`` (Unix seconds)."""
        fact = parse_line(text, self.family)
        return self.apply(fact, ts) if fact is not None else None

    def feed_chunk(self, joined: str, ts: float) -> list[ev.ProgressUpdate]:
        """The updates of the ``"\\n"``-joined lines of one chunk, in line order: the last fact of each
        rule (:func:`chunk_facts`; earlier ones of the same rule in the chunk are superseded — progress
        is state). A chunk without a prefilter key costs a few C-level substring scans; a flood of
        progress lines costs one ``rfind`` + one regex search per rule, not per line (issue #18)."""
        out: list[ev.ProgressUpdate] = []
        for _, fact in chunk_facts(joined, self.family):
            upd = self.apply(fact, ts)
            if upd is not None:
                out.append(upd)
        return out

    def apply(self, fact: Fact, ts: float) -> ev.ProgressUpdate | None:
        """Record ``fact``; None when it repeats a fact already recorded in this run."""
        key = (fact.kind, fact.round, fact.stage, fact.animal, fact.peer_id,
               None if fact.kind == "waiting" else fact.detail, self.round if fact.kind == "reward" else None)
        last = self._seen.get(key)
        if last is not None and (fact.kind != "waiting" or ts - last < self.repeat_after):
            return None
        self._seen[key] = ts
        self._seen.move_to_end(key)
        while len(self._seen) > 512:
            self._seen.popitem(last=False)
        advanced = self._advance(fact)
        self._absorb(fact)
        rnd = fact.round if fact.round is not None else self.round
        stage = fact.stage if fact.round is not None or fact.kind in _POSITIONAL else self.stage
        return ev.ProgressUpdate(self.node, ts, fact.kind, rnd, stage, self.round_total,
                                 self.animal, self.peer_id, advanced, fact.detail)

    def _advance(self, fact: Fact) -> bool:
        if fact.kind not in _POSITIONAL or fact.round is None:
            return False
        pos = (fact.round, fact.stage or 0, 1 if fact.kind == "stage_done" else 0)
        if self._new_run or self.best is None or pos > self.best:
            self._new_run = False
            self.best = pos if self.best is None or pos > self.best or fact.round < self.best[0] else self.best
            return True
        return False

    def _absorb(self, fact: Fact) -> None:
        if fact.kind in _POSITIONAL and fact.round is not None:
            if self.round != fact.round:
                self.stage = None
            self.round = fact.round
            if fact.stage is not None:
                self.stage = fact.stage
        elif fact.kind == "waiting" and self.round is None:
            self.round = fact.round
        if fact.round_total is not None:
            self.round_total = fact.round_total
        self.animal = fact.animal or self.animal
        self.peer_id = fact.peer_id or self.peer_id


def log_files(checkout: Path, generation: str | None) -> list[Any]:
    """Followers for the node's own log files of ``generation`` (all candidates when unknown)."""
    logs = Path(checkout) / "logs"
    main = {"E2": ["swarm.log"], "E3": ["swarm_launcher.log"], "E4": ["swarm_launcher.log"],
            "E5": ["swarm_launcher.log"], "E6": ["swarm_launcher.log"]}.get(generation or "", ["swarm.log", "swarm_launcher.log"])
    out: list[Any] = [FileFollower(logs / name) for name in main]
    if generation in ("E3", "E4", None, "unknown", ""):
        out.append(GlobFollower(str(logs / "training_*.log")))
    return out


class ProgressService:
    """Service ``progress``: parses output lines inline and polls log files every ``poll_interval`` s.

    ``history()`` (optional) returns the restart policy's ``History`` of the node (or None): the model named by
    the node's "Using Model:" line on its output is written to ``history.extra["model_in_use"]`` (a str) and
    removed at every ``ProcessStarted`` — without ``MODEL_NAME`` E4–E6 pick the model at random per start
    (generations.md §7.4, §9.4). Only the live output is used: a log-file line may lag behind a restart. The
    trainer logs that line once per start (``rgym_exp/src/manager.py`` v0.5.8/v0.6.4, ``code_gen_exp/src/
    manager.py`` v0.7.0), so once found it is not searched for again until the next start (issue #18: every
    chunk of a CUDA error flood holds the probe letter ``U`` and cost a full scan).
    """

    name = "progress"

    def __init__(self, bus: ev.EventBus, clock: Any, node: str, checkout: Path | None,
                 generation: str | None = None, poll_interval: float = 1.0,
                 history: Callable[[], Any] | None = None) -> None:
        self.bus, self.clock, self.node, self.checkout = bus, clock, node, checkout
        self.poll_interval = poll_interval
        self.history = history
        self.model: str | None = None
        self.tracker = ProgressTracker(node, generation)
        self.followers = log_files(checkout, generation) if checkout else []
        self._files_for = generation
        self._unsubscribe = bus.subscribe(self._on_event)

    def _on_event(self, e: ev.Event) -> None:
        if e.node != self.node:
            return
        if type(e) is ev.OutputBatch:  # the live output path: one event per chunk read
            self._on_text(e.joined, e.ts)
        elif isinstance(e, ev.OutputLine):
            self._on_text(e.text, e.ts)
        elif isinstance(e, ev.ProcessStarted):
            self.tracker.new_run(e.generation)
            self._share_model(None)
            if self.checkout and e.generation not in (self._files_for, None, "", "unknown"):
                for f in self.followers:
                    f.close()
                self.followers = log_files(self.checkout, e.generation)
                self._files_for = e.generation

    def _on_text(self, joined: str, ts: float) -> None:
        """Output lines (``"\\n"``-joined; one line is its own text): progress updates, then the model in use."""
        for upd in self.tracker.feed_chunk(joined, ts):
            self.bus.publish(upd)
        if self.model is None and (model := model_in_use(joined)):  # once per start: later chunks are not searched
            self._share_model(model)

    def _share_model(self, model: str | None) -> None:
        """Record the model in use (None: a new run, not known yet) for the OOM ladder."""
        self.model = model
        if self.history is None:
            return
        try:
            history = self.history()
        except Exception:  # the policy state is optional here; progress must go on
            log.exception("progress: cannot reach the restart policy's history")
            return
        extra = getattr(history, "extra", None)
        if not isinstance(extra, dict):
            return
        if model:
            extra[IN_USE] = model
        else:
            extra.pop(IN_USE, None)

    def poll(self) -> int:
        """Read new lines of the log files now; returns the number of updates published."""
        n = 0
        for follower in self.followers:
            lines = follower.read_lines()
            if not lines:
                continue
            for upd in self.tracker.feed_chunk(strip_ansi("\n".join(lines)), self.clock.time()):  # state, as stdout
                self.bus.publish(upd)
                n += 1
        return n

    async def run(self) -> None:
        """Poll the files until cancelled; never raises out."""
        try:
            while True:
                try:
                    self.poll()
                except Exception:
                    log.exception("progress: reading the node's log files failed")
                await self.clock.sleep(self.poll_interval)
        finally:
            self._unsubscribe()
            for f in self.followers:
                f.close()


def create_service(rt: Any) -> ProgressService:
    """Factory for the runtime: checkout from ``rt.spec.cwd`` (else ``rt.checkout`` / ``settings.rl_swarm_dir``)."""
    spec = getattr(rt, "spec", None)
    checkout = Path(spec.cwd) if spec is not None else Path(getattr(rt, "checkout", None) or rt.settings.rl_swarm_dir)
    placement = getattr(rt, "placement", None)
    if getattr(placement, "log_root", None) is not None:
        checkout = Path(placement.log_root)  # E4-E6 sharing a checkout: ROOT moved this node's logs there
    elif getattr(placement, "shares_checkout", ()):
        checkout = None  # several nodes write the same log files there: follow only this node's own output
    return ProgressService(rt.bus, rt.clock, rt.node, checkout, spec.generation if spec is not None else None,
                           history=lambda: getattr(getattr(rt, "watcher", None), "history", None))
