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
from gswarm.logs._structure import Structure

TextOf = Callable[[int], "str | None"]
_LAST_WINS_TIERS = 3  # specific, weak, context
MAX_EVIDENCE_CHARS = 500


@dataclass(frozen=True)
class Hit:
    rule: Rule
    idx: int
    lines: tuple[int, ...]


def evaluate(rules: Iterable[Rule], found: dict[str, list[int]], text_of: TextOf, st: Structure | None = None) -> Hit | None:
    """Evaluate every rule and return the chosen hit (see module docstring).

    With ``st`` (the structure of the exit tail, ``_structure.parse``) the final exception decides the order:
    specific line rules inside the last traceback, then structural rules, then the other line rules except
    ``context_only`` ones (banners, stack frames), then structural fallbacks (tier wrapper: the final exception
    itself), then wrappers and benign lines. Without a final exception: specific line rules, structural rules
    (exit signal/status), then every line rule by tier as before."""
    rules = list(rules)
    hits = [h for h in (_eval(r, found, text_of) for r in rules if not r.structural) if h]
    if st is None:
        return choose(hits)
    structural = [r for r in rules if r.structural]
    exc = st.exception
    first = [h for h in hits if h.rule.tier == 0 and (exc is None or h.idx >= exc.start)]
    if first:
        return choose(first)
    found_struct = struct_hit([r for r in structural if r.tier == 0], st)
    if found_struct:
        return found_struct
    if exc is None:
        return choose(hits)
    rest = [h for h in hits if not h.rule.context_only and h.rule.tier < _LAST_WINS_TIERS]
    return choose(rest) or struct_hit([r for r in structural if r.tier > 0], st) or choose(
        [h for h in hits if not h.rule.context_only])


def struct_hit(rules: Iterable[Rule], st: Structure) -> Hit | None:
    """The first structural rule (file order) matching ``st``; evidence = raising frame + exception line, or the
    launcher's last lines for exit-only rules."""
    exc = st.exception
    for r in rules:
        if (r.signal and st.signal not in r.signal) or (r.exit_code and st.exit_code not in r.exit_code):
            continue
        needs_exc = r.exception or r.message or r.frame or r.frame_module
        if needs_exc:
            if exc is None:
                continue
            kind = exc.frame.kind if exc.frame else "none"
            if r.exception and not any(_type_match(p, exc.type) for p in r.exception):
                continue
            if r.message and not any(p.rx.search(exc.message) for p in r.message):
                continue
            if (r.frame and kind not in r.frame) or (r.frame_module and (not exc.frame or exc.frame.module not in r.frame_module)):
                continue
            lines = ((exc.frame.index,) if exc.frame else ()) + (exc.index,)
            return Hit(r, exc.index, lines)
        last = st.launcher[-2:] or ((exc.index,) if exc else ())
        return Hit(r, last[-1] if last else 0, tuple(last))
    return None


def _type_match(p: Pat, full: str) -> bool:
    if p.source.startswith("re:"):
        return p.rx.search(full) is not None
    return full == p.source or full.rsplit(".", 1)[-1] == p.source


def choose(hits: list[Hit]) -> Hit | None:
    """Best tier first; inside specific/weak/context the last anchor line wins, inside wrapper/benign the first rule."""
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
    if rule.reset and not rule.detector:  # a later "it went on" line ends the incident (e.g. userData.json found)
        resets = _indexes(rule.reset, found)
        if resets:
            anchors = anchors[bisect_right(anchors, resets[-1]):]
            if not anchors:
                return None
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
