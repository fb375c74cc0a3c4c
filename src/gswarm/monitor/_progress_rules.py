"""Progress markers of RL Swarm output, per generation family, as regexes on ANSI-stripped text.

Sources (generations.md): §12 "Suggested progress regexes"; E0 §3.6 ("Joining round: r starting at
stage: s", "Training round: r stage: s", "Starting new round: r", "Already finished round: r.
Skipping."); E1/E2 §4.6/§5.6 (Hello with animal + peer id, "Submitting winners for round r",
"Finished training round", "Registering self with peer ID", "Peer ID [p] is already registered",
TRL metric dicts with ``'reward'``, E2 ``swarm.log`` "[PRINT] " mirror); E3–E6 §6.6–§9.6
("Starting round: r/1000000.", "🐝 Joining round: r", "Already finished round: r. Next check in Ns.");
E5 §8.6 (bets, claims); E6 §9.6 ("Joining CodeZero Swarm"). The model in use (E3–E6 "Using Model: <hf id>",
§6.6/§9.6; E4/E5 "as E3") is not a progress fact: :func:`model_in_use` reads it for the restart policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gswarm.wordscan import WordSet

_PEER = r"(Qm\w{44}|12D3Koo\w+)"


@dataclass(frozen=True)
class Fact:
    """One parsed progress fact. ``kind``: hello, peer, join, round, stage, stage_done, waiting,
    winners, reward, bet, claim, swarm. ``round``/``stage``/``round_total`` are ints or None."""

    kind: str
    round: int | None = None
    stage: int | None = None
    round_total: int | None = None
    animal: str | None = None
    peer_id: str | None = None
    detail: str = ""


def _hello(m: re.Match) -> Fact:
    return Fact("hello", animal=m[1], peer_id=m[2])


def _join(m: re.Match) -> Fact:
    return Fact("join", int(m[1]), int(m[2]) if m[2] is not None else None)


def _waiting(m: re.Match) -> Fact:
    detail = f"next check in {m[2]}s" if m[2] else "skipping"
    return Fact("waiting", int(m[1]), detail=detail)


def _bet(m: re.Match) -> Fact:
    return Fact("bet", peer_id=m[3], detail=f"game {m[1]} round {m[2]}: {m[4]} tokens on choice - {m[5].strip()}")


_COMMON = [
    ("Hello", re.compile(r"Hello .*?\[([a-z]+ [a-z]+ [a-z]+)\].*?\[" + _PEER + r"\]"), _hello),
    ("Joining round", re.compile(r"Joining round:\s*(\d+)(?: starting at stage:\s*(\d+))?"), _join),
    ("Already finished", re.compile(r"Already finished round:\s*(\d+)\.\s*(?:Next check in ([\d.]+)s|Skipping)"), _waiting),
]
_HIVEMIND = [  # E0-E2
    ("raining round", re.compile(r"(Finished )?[Tt]raining round:\s*(\d+) stage:\s*(\d+)"),
     lambda m: Fact("stage_done" if m[1] else "stage", int(m[2]), int(m[3]))),
    ("Starting new round", re.compile(r"Starting new round:\s*(\d+)"), lambda m: Fact("round", int(m[1]))),
    ("Submitting winners", re.compile(r"Submitting winners for round (\d+):?\s*(.*)"),
     lambda m: Fact("winners", int(m[1]), detail=f"winners: {m[2].strip() or '[]'}")),
    ("peer ID", re.compile(r"(?:Registering self with peer ID: |Peer ID \[)" + _PEER), lambda m: Fact("peer", peer_id=m[1])),
    ("'reward'", re.compile(r"'reward': (-?[\d.]+(?:e-?\d+)?)"), lambda m: Fact("reward", detail=f"reward={float(m[1]):.6g}")),
]
_GENRL = [  # E3-E6
    ("Starting round", re.compile(r"Starting round:\s*(\d+)/(\d+)\."), lambda m: Fact("round", int(m[1]), round_total=int(m[2]))),
    ("placed bet", re.compile(r"Game (\d+) Round (\d+): Peer (\S+) placed bet of ([\d.]+) tokens on choice - (.*)"), _bet),
    ("claimed reward", re.compile(r"successfully claimed reward for previous game (\d+)"),
     lambda m: Fact("claim", detail=f"claimed reward for game {m[1]}")),
    ("Joining CodeZero", re.compile(r"Joining CodeZero Swarm"), lambda m: Fact("swarm", detail="joining CodeZero swarm")),
    ("peer ID", re.compile(r"Peer ID \[" + _PEER), lambda m: Fact("peer", peer_id=m[1])),
]
FAMILIES = {"hivemind": _COMMON + _HIVEMIND, "genrl": _COMMON + _GENRL, "all": _COMMON + _HIVEMIND + _GENRL}
# per family: a line without a key of its own family gives no fact in that family (plain words, never a newline)
FAMILY_PREFILTER = {f: re.compile("|".join(sorted({re.escape(k) for k, _, _ in rules}))).search for f, rules in FAMILIES.items()}
# the same keys for a whole chunk: a few C-level scans (gswarm.wordscan, ~0.03-0.3 ms per MiB each) say whether any line
# can hold a fact before the regex above (~7 ms per MiB: it tries every position) looks for where
FAMILY_KEYS = {f: WordSet(sorted({k for k, _, _ in rules})) for f, rules in FAMILIES.items()}


MODEL_KEY = "Using Model:"
_MODEL = re.compile(r"Using Model:[ \t]*(\S+)")  # never across a line break of a joined chunk
_MODEL_WORD = WordSet([MODEL_KEY])


def model_in_use(text: str) -> str | None:
    """The Hugging Face id in an ANSI-stripped "Using Model: <hf id>" line, else None.

    Source: E3 genrl-swarm launcher, E4/E5 ``rgym_exp`` and E6 ``code_gen_exp`` log it at INFO through
    ``genrl.logging_utils.global_defs`` (``genrl_swarm.…`` in E3) once per start, after the model is chosen
    (``MODEL_NAME`` or the random default pick); generations.md §6.6, §7.6, §9.6. Case-sensitive on purpose:
    the script's own ">> Using model: <name>" echo of the prompt answer (§6.3) is not the trainer's word.
    For a multi-line ``text`` the last such line wins.
    """
    if not _MODEL_WORD.any_in(text):  # a memchr for a rare capital first: a flood chunk costs ~nothing
        return None
    found = _MODEL.findall(text)
    return found[-1] if found else None


def family_of(generation: str | None) -> str:
    """``hivemind`` for E0-E2, ``genrl`` for E3-E6, ``all`` otherwise (unknown generation)."""
    if generation in ("E0", "E1", "E2"):
        return "hivemind"
    if generation in ("E3", "E4", "E5", "E6"):
        return "genrl"
    return "all"


_TRIES = 4  # occurrences of a key tried from the end of a chunk before one regex pass over the rest


def _last_match(joined: str, key: str, rx: re.Pattern[str]) -> re.Match[str] | None:
    """The last line of ``joined`` holding ``key`` that ``rx`` matches (searched within that line)."""
    end = len(joined)
    for _ in range(_TRIES):
        at = joined.rfind(key, 0, end)
        if at < 0:
            return None
        start = joined.rfind("\n", 0, at) + 1
        stop = joined.find("\n", at)
        m = rx.search(joined, start, len(joined) if stop < 0 else stop)
        if m:
            return m
        end = start
    last = None
    for last in rx.finditer(joined, 0, end):  # a chunk full of near misses: one C-level pass
        pass
    return last


def chunk_facts(joined: str, family: str = "all") -> list[tuple[int, Fact]]:
    """Progress is state: the *last* fact of each rule in the ``"\\n"``-joined lines ``joined``, as
    ``[(line_start, fact)]`` in line order; one line gives one fact (its first rule, as :func:`parse_line`).

    Cost does not grow with the number of progress lines: per key present one ``rfind`` from the end
    and one regex search on that line (a flood of ``Starting round: N/…`` lines costs about as
    much as plain lines). Earlier facts of the same rule in the chunk are superseded (coalesced).
    """
    present = FAMILY_KEYS[family].found_in(joined)  # a memchr per key first: most keys cost ~nothing
    if not present:
        return []
    found: dict[int, Fact] = {}
    for key, rx, make in FAMILIES[family]:
        if key not in present:
            continue
        m = _last_match(joined, key, rx)
        if m is not None:
            found.setdefault(joined.rfind("\n", 0, m.start()) + 1, make(m))
    return sorted(found.items(), key=lambda kv: kv[0])


def parse_line(text: str, family: str = "all") -> Fact | None:
    """The progress fact in one ANSI-stripped line, or None (most lines: one prefilter search)."""
    if not FAMILY_PREFILTER[family](text):
        return None
    for key, rx, make in FAMILIES[family]:
        if key in text:
            m = rx.search(text)
            if m:
                return make(m)
    return None
