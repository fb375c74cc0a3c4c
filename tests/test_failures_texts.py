"""The emulator's failure texts (emulator/failure_texts.json) exist for every category and classify as such."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gswarm.events import Category
from gswarm.logs.classify import Classifier

TEXTS = Path(__file__).resolve().parents[1] / "src" / "gswarm" / "emulator" / "failure_texts.json"
DATA = json.loads(TEXTS.read_text(encoding="utf-8"))
INDEX = (Path(__file__).resolve().parent / "data" / "failures" / "INDEX.md").read_text(encoding="utf-8")
INDEX_CATEGORIES = [line[4:].strip() for line in INDEX.splitlines() if line.startswith("### ")]
CATS = sorted(k for k in DATA if not k.startswith("_"))
ENDINGS = {"exit1": (1, None), "exit0": (0, None), "sigkill": (None, 9), "continue": (None, None), "hang": (None, None)}


def test_every_category_has_a_text() -> None:
    assert len(INDEX_CATEGORIES) == 24
    missing = set(INDEX_CATEGORIES) | {"identity_taken", "trainer_error_swallowed", "game_exception_exit_zero"}
    assert missing - set(CATS) == set()
    assert DATA["game_exception_exit_zero"]["ending"] == "exit0"
    assert DATA["system_oom_killed"]["ending"] == "sigkill"
    assert DATA["chain_submit_rejected"]["ending"] == "continue"


@pytest.mark.parametrize("category", CATS)
def test_text_classifies_as_its_category(category: str) -> None:
    entry = DATA[category]
    assert entry["ending"] in ENDINGS and entry["lines"]
    code, sig = ENDINGS[entry["ending"]]
    got = Classifier.from_package().classify_lines(entry["lines"], None, exit_code=code, signal=sig) \
        if code is not None or sig is not None else Classifier.from_package().classify_lines(entry["lines"])
    assert got.category == Category(category)
