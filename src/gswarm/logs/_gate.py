"""Prefilter ("gate") for the classifier: a few words every failure pattern must contain.

Scanning each line with one regex made of every rule pattern costs ~4 µs per line; a gate
of a few dozen short words costs well under that, and only the rare lines that pass it are
matched against the rules. :func:`covering_gates` proves, from the regex's parse tree, that a
pattern can only match text containing one of the gate words (so the gate never hides a hit).
"""

from __future__ import annotations

import re

try:  # Python 3.11+
    from re import _constants as _c, _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]


def covering_gates(pattern: str, gates: tuple[str, ...], regex: bool) -> frozenset[str] | None:
    """Gate words of which at least one occurs in every text ``pattern`` matches, or None.

    ``regex`` False means ``pattern`` is a plain substring. For a regex, mandatory literal runs
    are collected from its parse tree; a branch is covered when every alternative is.
    """
    if not regex:
        hit = next((g for g in gates if g in pattern), None)
        return frozenset({hit}) if hit else None
    return _cover_seq(list(_p.parse(pattern)), gates)


def _cover_seq(items: list, gates: tuple[str, ...]) -> frozenset[str] | None:
    run: list[str] = []
    runs: list[str] = []
    subs: list[frozenset[str]] = []
    for op, av in items:
        if op is _c.LITERAL:
            run.append(chr(av))
            continue
        runs.append("".join(run))
        run = []
        found = _cover_item(op, av, gates)
        if found:
            subs.append(found)
    runs.append("".join(run))
    for text in runs:
        hit = next((g for g in gates if g in text), None)
        if hit:
            return frozenset({hit})
    return subs[0] if subs else None


def _cover_item(op, av, gates: tuple[str, ...]) -> frozenset[str] | None:
    if op is _c.SUBPATTERN:
        return _cover_seq(list(av[-1]), gates)
    if op is _c.BRANCH:
        found: set[str] = set()
        for alt in av[1]:
            part = _cover_seq(list(alt), gates)
            if not part:
                return None
            found |= part
        return frozenset(found)
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and av[0] >= 1:
        return _cover_seq(list(av[2]), gates)
    return None


def build_gate(words: set[str]) -> re.Pattern[str] | None:
    """One regex searching for any of ``words`` (a trie, so each position is tried once)."""
    if not words:
        return None
    trie: dict = {}
    for w in sorted(words):
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}
    return re.compile(_trie_regex(trie))


def _trie_regex(node: dict) -> str:
    if list(node) == [""]:
        return ""
    alts = [re.escape(ch) + _trie_regex(child) for ch, child in sorted(node.items()) if ch]
    body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
    # a word that is a prefix of another ends here: the rest is optional (a shorter match suffices)
    return f"(?:{body})?" if "" in node else body
