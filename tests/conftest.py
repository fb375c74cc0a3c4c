"""Shared fixtures: a fake clock, an isolated state dir and environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gswarm.clock import FakeClock

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No GSWARM_* variable from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("GSWARM_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("GSWARM_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    p = tmp_path / "state"
    p.mkdir(exist_ok=True)
    return p
