"""Rule evaluation over the lines that passed the prefilter (shared by batch and stream classifiers).

Input: ``trig`` = [(line index, text)] in order (only gate-passing lines), ``text_of(i)`` returning any
line's text or None when it is no longer available. Output: the chosen :class:`Hit` or None.
Choice: best tier first; inside specific/weak/context the LAST anchor line wins (the final exception of
the last traceback decides; ties go to the earlier rule), inside wrapper/benign the earlier rule wins.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Callable, Iterable

from gswarm.logs._rules import Pat, Rule

TextOf = Callable[[int], "str | None"]
_LAST_WINS_TIERS = 3  # specific, weak, context
MAX_EVIDENCE_CHARS = 500


@dataclass(frozen=True)
class Hit:
    rule: Rule
    idx: int
    lines: tuple[int, ...]


def evaluate(rules: Iterable[Rule], found: dict[str, list[int]], text_of: TextOf) -> Hit | None:
    """Evaluate every rule and return the chosen hit (see module docstring)."""
    hits = [h for h in (_eval(r, found, text_of) for r in rules) if h]
    if not hits:
        return None
    tier = min(h.rule.tier for h in hits)
    best = [h for h in hits if h.rule.tier == tier]
    if tier < _LAST_WINS_TIERS:
        return max(best, key=lambda h: (h.idx, -h.rule.order))
    return min(best, key=lambda h: h.rule.order)


def evidence(hit: Hit, text_of: TextOf) -> tuple[str, ...]:
    """The evidence lines of ``hit`` (line order, stripped, long lines cut)."""
    idxs = set(hit.lines) | set(range(hit.idx + 1, hit.idx + 1 + hit.rule.after))
    out = []
    for i in sorted(idxs):
        text = text_of(i)
        if text is not None and text.strip():
            text = text.strip()
            out.append(text if len(text) <= MAX_EVIDENCE_CHARS else text[:MAX_EVIDENCE_CHARS] + "…")
    return tuple(out)


def _indexes(pats: tuple[Pat, ...], found: dict[str, list[int]]) -> list[int]:
    if len(pats) == 1:
        return found.get(pats[0].source, [])
    return sorted({i for p in pats for i in found.get(p.source, ())})


def _eval(rule: Rule, found: dict[str, list[int]], text_of: TextOf) -> Hit | None:
    anchors = _indexes(rule.any, found)
    if not anchors:
        return None
    if rule.unless:
        anchors = [i for i in anchors if not any(u.rx.search(text_of(i) or "") for u in rule.unless)]
    if rule.detector == "repeat":
        return _repeat(rule, anchors, found, text_of)
    if rule.detector == "round_gap":
        return _round_gap(rule, anchors, found, text_of)
    if len(anchors) < rule.min_count or any(not found.get(p.source) for p in rule.all):
        return None
    support: tuple[int, ...] = ()
    if rule.near:
        pair = _near(rule, anchors, text_of)
        if pair is None:
            return None
        anchors = [i for i in anchors if i <= pair[0]]
        support = (pair[1],)
    last = anchors[-1]
    if rule.min_count > 1:
        shown = tuple(anchors[-3:])
    else:  # the latest line of each different marker of the rule (e.g. 022: registerPeer, AA24 and submitReward)
        kept = set(anchors)
        per_pat = {max(i for i in found[p.source] if i in kept and i <= last) for p in rule.any
                   if any(i in kept and i <= last for i in found.get(p.source, ()))}
        shown = tuple(sorted(per_pat)[-3:])
    return Hit(rule, last, shown + support)


def _near(rule: Rule, anchors: list[int], text_of: TextOf) -> tuple[int, int] | None:
    """(anchor, near line) for the latest anchor with a ``near`` match within ``window`` lines."""
    for i in reversed(anchors):
        for j in range(i - rule.window, i + rule.window + 1):
            text = text_of(j)
            if text is not None and any(p.rx.search(text) for p in rule.near):
                return i, j
    return None


def _number(rule: Rule, pats: tuple[Pat, ...], text: str | None) -> int | None:
    for p in pats:
        m = p.rx.search(text or "")
        if m:
            return int(m.group(1))
    return None


def _repeat(rule: Rule, anchors: list[int], found: dict[str, list[int]], text_of: TextOf) -> Hit | None:
    resets = _indexes(rule.reset, found)
    if resets:
        anchors = anchors[bisect_right(anchors, resets[-1]):]
    if len(anchors) < rule.min_count:
        return None
    value = _number(rule, rule.any, text_of(anchors[-1]))
    same = [i for i in anchors if _number(rule, rule.any, text_of(i)) == value]
    if value is None or len(same) < rule.min_count:
        return None
    return Hit(rule, same[-1], (same[0], same[-1]))


def _round_gap(rule: Rule, anchors: list[int], found: dict[str, list[int]], text_of: TextOf) -> Hit | None:
    froms = _indexes(rule.gap_from, found)
    best = None
    prev_anchor = -1
    for i in anchors:
        k = bisect_left(froms, i) - 1
        if k >= 0 and froms[k] > prev_anchor:
            start, to = _number(rule, rule.gap_from, text_of(froms[k])), _number(rule, rule.any, text_of(i))
            if start is not None and to is not None and to > start + 1:
                best = Hit(rule, i, (froms[k], i))
        prev_anchor = i
    return best
