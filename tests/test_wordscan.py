"""gswarm.wordscan.WordSet: the probe-character shortcut never changes the answer of a plain ``in``."""

from __future__ import annotations

import random

import pytest

from gswarm.wordscan import WordSet


def test_found_and_any_equal_plain_substring_tests_on_random_text() -> None:
    rnd = random.Random(3)
    alphabet = "aEeRrOoW N[]:-\n0已"
    words = ["ERROR", "WARN", "Error", "error", "a E", "[N]", "0", "已杀", "W N", "oo"]
    ws = WordSet(words)
    for _ in range(2000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40)))
        want = [w for w in words if w in text]
        assert ws.found_in(text) == want, text
        assert ws.any_in(text) is bool(want)


def test_probe_is_the_first_uncommon_character_and_duplicates_go() -> None:
    ws = WordSet(["Starting round", "placed bet", "Starting round", "continuing"])
    assert ws.words == ("Starting round", "placed bet", "continuing")
    assert [p for p, _ in ws._pairs] == ["S", "b", "g"]
    assert [p for p, _ in WordSet(["peer ID", "WARN", "claimed reward", "已杀死"])._pairs] == ["D", "W", "w", "已"]
    assert not ws.any_in("[INFO] - Training round: 1 stage: 0\n" * 100)
    assert ws.found_in("x\nStarting round: 3/10.\ncontinuing") == ["Starting round", "continuing"]


def test_an_empty_word_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        WordSet(["ok", ""])
