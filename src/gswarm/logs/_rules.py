"""Load and validate the rule table (``rules.toml``); see the comment block at its top for the fields.

Every problem raises :class:`gswarm.errors.ConfigError` naming the file, the rule id and the field.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gswarm.errors import ConfigError
from gswarm.events import Category, Recovery, Severity
from gswarm.logs._gate import covering_gates

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TIERS = ("specific", "weak", "context", "wrapper", "benign")
GENERATIONS = frozenset({"E0", "E1", "E2", "E3", "E4", "E5", "E6"})
DETECTORS = ("", "repeat", "round_gap")
_PATTERN_FIELDS = ("any", "all", "near", "unless", "live_anchor", "reset", "gap_from")
_STRUCT_PATTERN_FIELDS = ("exception", "message")  # matched on the final exception (see _structure.py), not per line
_STRUCT_FIELDS = _STRUCT_PATTERN_FIELDS + ("frame", "frame_module", "signal", "exit_code")
FRAME_KINDS = ("project", "site-packages", "stdlib", "other", "none")
_FIELDS = frozenset(_PATTERN_FIELDS) | frozenset(_STRUCT_FIELDS) | {
    "id", "category", "recovery", "severity", "tier", "generations", "window", "min_count", "after",
    "stream", "live", "live_window", "live_gap", "detector", "advice", "context_only",
}


@dataclass(frozen=True)
class Pat:
    """One compiled pattern: ``rx.search`` on a line; ``gates`` prove which prefilter words it needs."""

    source: str
    rx: re.Pattern[str]
    gates: frozenset[str]
    anchored: bool


@dataclass(frozen=True)
class Rule:
    """One validated row of the rule table (fields as documented in rules.toml)."""

    id: str
    order: int
    category: Category
    recovery: Recovery
    severity: Severity
    tier: int
    generations: frozenset[str] | None  # None = all
    any: tuple[Pat, ...]
    all: tuple[Pat, ...]
    near: tuple[Pat, ...]
    unless: tuple[Pat, ...]
    live_anchor: tuple[Pat, ...]
    reset: tuple[Pat, ...]
    gap_from: tuple[Pat, ...]
    window: int
    min_count: int
    after: int
    stream: bool
    live: int
    live_window: float
    live_gap: int
    detector: str
    advice: str
    # structural rules (any of these set; ``any`` empty): matched once on the parsed exit tail
    exception: tuple[Pat, ...] = ()
    message: tuple[Pat, ...] = ()
    frame: frozenset[str] = frozenset()
    frame_module: frozenset[str] = frozenset()
    signal: frozenset[int] = frozenset()
    exit_code: frozenset[int] = frozenset()
    context_only: bool = False  # a banner/frame line: never the verdict when a final exception exists

    @property
    def structural(self) -> bool:
        return bool(self.exception or self.message or self.frame or self.frame_module or self.signal or self.exit_code)

    def applies(self, generation: str | None) -> bool:
        return self.generations is None or generation in (None, "", "unknown") or generation in self.generations


@dataclass(frozen=True)
class RuleSet:
    gates: tuple[str, ...]
    rules: tuple[Rule, ...]


def load_rules(path: Path) -> RuleSet:
    """Read and validate ``path``. Raises ConfigError (missing file, bad TOML, bad rule)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"rule file {path} does not exist; pass an existing rules.toml") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"rule file {path} is not valid TOML: {exc}; fix the file") from None
    gates = data.get("prefilter", {}).get("gate")
    if not isinstance(gates, list) or not gates or not all(isinstance(g, str) and g for g in gates):
        raise ConfigError(f"rule file {path}: [prefilter] gate must be a non-empty list of words")
    raw_rules = data.get("rule")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise ConfigError(f"rule file {path}: no [[rule]] entries; add at least one rule")
    rules: list[Rule] = []
    seen: set[str] = set()
    for n, raw in enumerate(raw_rules):
        rule = _rule(path, n, raw, tuple(gates))
        if rule.id in seen:
            raise ConfigError(f"rule file {path}: rule {rule.id!r}: field 'id': duplicate id; ids must be unique")
        seen.add(rule.id)
        rules.append(rule)
    return RuleSet(tuple(gates), tuple(rules))


def _rule(path: Path, n: int, raw: Any, gates: tuple[str, ...]) -> Rule:
    rid = raw.get("id") if isinstance(raw, dict) else None

    def bad(field: str, why: str) -> ConfigError:
        return ConfigError(f"rule file {path}: rule {rid or f'#{n + 1}'!r}: field {field!r}: {why}; fix the rule")

    if not isinstance(rid, str) or not rid:
        raise bad("id", "missing or not a string")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise bad(sorted(unknown)[0], "unknown field")

    def enum(field: str, cls: type) -> Any:
        try:
            return cls(raw.get(field))
        except ValueError:
            raise bad(field, f"{raw.get(field)!r} is not one of {[e.value for e in cls]}") from None

    def num(field: str, kind: type, default: Any, low: float) -> Any:
        value = raw.get(field, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)) or value < low:
            raise bad(field, f"must be a {kind.__name__} >= {low:g}")
        return kind(value)

    gens = raw.get("generations", ["all"])
    if not isinstance(gens, list) or not gens or not set(gens) <= GENERATIONS | {"all"}:
        raise bad("generations", "must be a list of E0..E6 or ['all']")
    tier = raw.get("tier", "specific")
    if tier not in TIERS:
        raise bad("tier", f"{tier!r} is not one of {list(TIERS)}")
    detector = raw.get("detector", "")
    if detector not in DETECTORS:
        raise bad("detector", f"{detector!r} is not one of {list(DETECTORS)}")
    advice = raw.get("advice")
    if not isinstance(advice, str) or not advice.strip():
        raise bad("advice", "missing; write what happened and what to do")
    if not isinstance(raw.get("stream", True), bool):
        raise bad("stream", "must be true or false")
    pats = {f: _patterns(raw.get(f, []), f, gates, bad) for f in _PATTERN_FIELDS}
    struct = {f: _patterns(raw.get(f, []), f, gates, bad) for f in _STRUCT_PATTERN_FIELDS}
    kinds = _strings(raw, "frame", bad)
    if not kinds <= set(FRAME_KINDS):
        raise bad("frame", f"must be a list of {list(FRAME_KINDS)}")
    ints = {f: _ints(raw, f, bad) for f in ("signal", "exit_code")}
    structural = any(struct.values()) or kinds or "frame_module" in raw or any(ints.values())
    if structural and pats["any"]:
        raise bad("any", "a structural rule (exception/message/frame/frame_module/signal/exit_code) takes no line patterns")
    if not pats["any"] and not structural:
        raise bad("any", "needs at least one pattern")
    if not isinstance(raw.get("context_only", False), bool):
        raise bad("context_only", "must be true or false")
    if detector and any(p.rx.groups != 1 for p in pats["any"] + pats["gap_from"]):
        raise bad("any", f"detector {detector!r} needs patterns with exactly one (number) group")
    return Rule(
        id=rid, order=n, category=enum("category", Category), recovery=enum("recovery", Recovery),
        severity=enum("severity", Severity), tier=TIERS.index(tier),
        generations=None if "all" in gens else frozenset(gens), **pats,
        window=num("window", int, 20, 0), min_count=num("min_count", int, 1, 1), after=num("after", int, 0, 0),
        stream=raw.get("stream", True), live=num("live", int, 0, 0), live_window=num("live_window", float, 0.0, 0),
        live_gap=num("live_gap", int, 0, 0),
        detector=detector, advice=" ".join(advice.split()),
        exception=struct["exception"], message=struct["message"], frame=frozenset(kinds),
        frame_module=frozenset(_strings(raw, "frame_module", bad)), signal=frozenset(ints["signal"]),
        exit_code=frozenset(ints["exit_code"]), context_only=raw.get("context_only", False),
    )


def _strings(raw: dict, field: str, bad: Any) -> set[str]:
    values = raw.get(field, [])
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise bad(field, "must be a list of non-empty strings")
    return set(values)


def _ints(raw: dict, field: str, bad: Any) -> set[int]:
    values = raw.get(field, [])
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise bad(field, "must be a list of integers")
    return set(values)


def _patterns(values: Any, field: str, gates: tuple[str, ...], bad: Any) -> tuple[Pat, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise bad(field, "must be a list of non-empty strings")
    out = []
    for source in values:
        is_rx = source.startswith("re:")
        body = source[3:] if is_rx else source
        try:
            rx = re.compile(body if is_rx else re.escape(body))
        except re.error as exc:
            raise bad(field, f"pattern {source!r} is not a valid regex ({exc})") from None
        cover = covering_gates(body, gates, is_rx)
        anchored = cover is None and is_rx and body.startswith("^")  # checked with one start-anchored regex
        if cover is None and not anchored and field not in ("unless", "near") + _STRUCT_PATTERN_FIELDS:
            raise bad(field, f"pattern {source!r} contains no [prefilter] gate word; add one to the gate list")
        out.append(Pat(source, rx, cover or frozenset(), anchored))
    return tuple(out)
