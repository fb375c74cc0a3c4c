"""OOM ladder vs. the model the node really uses ("Using Model: <hf id>", E3-E6, generations.md §6.6/§9.6).

Regression: without ``MODEL_NAME`` the ladder thought the node ran "the default pick" and "stepped down" to the
model it already used (Gensyn/Qwen2.5-0.5B-Instruct on E4, Qwen/Qwen2.5-Coder-0.5B-Instruct on E6), wasting a
restart before stopping. Policy tests use plain ``now`` floats; the service test feeds bus events by hand; the
end-to-end test runs the emulated E4 node under the real runtime with a FakeClock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gswarm.clock import FakeClock
from gswarm.config import Settings, load_settings
from gswarm.emulator.checkout import init_checkout
from gswarm.events import (Category, Event, EventBus, OutputBatch, OutputLine, ProcessStarted, Recovery,
                           RecoveryAction, Severity, StateChanged)
from gswarm.monitor._progress_rules import model_in_use
from gswarm.monitor.progress import ProgressService
from gswarm.runtime import Runtime
from gswarm.supervisor.policy import STEP_UP_AFTER, Classification, ExitInfo, History, decide, maybe_step_up
from tests.helpers import until

T0 = 1_700_000_000.0
DATA = Path(__file__).parent / "data" / "progress"
CUDA = Classification(Category.CUDA_OOM, Recovery.REDUCE_MODEL, Severity.ERROR, "cuda_oom", ("OOM",), "advice")
RAM = Classification(Category.SYSTEM_OOM_KILLED, Recovery.REDUCE_MODEL, Severity.ERROR, "ram", ("killed",), "advice")


def crash(gen: str, uptime: float = 30.0) -> ExitInfo:
    return ExitInfo(1, None, uptime, generation=gen)


def using(model: str) -> History:
    return History(extra={"model_in_use": model})


@pytest.mark.parametrize("gen, model", [("E3", "Gensyn/Qwen2.5-0.5B-Instruct"), ("E4", "Gensyn/Qwen2.5-0.5B-Instruct"),
                                        ("E5", "Gensyn/Qwen2.5-0.5B-Instruct"), ("E6", "Qwen/Qwen2.5-Coder-0.5B-Instruct")])
def test_smallest_model_in_use_skips_the_model_rung(gen: str, model: str) -> None:
    s, h = Settings(), using(model)
    d1 = decide(crash(gen), CUDA, h, s, T0)
    assert (d1.action, d1.env) == ("restart", {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"})
    d2 = decide(crash(gen), CUDA, h, s, T0 + 20)
    assert (d2.action, d2.alert, d2.recovery) == ("stop", True, Recovery.STOP_AND_ALERT)
    assert d2.reason == (f"cuda_oom: out of memory with {model} (the node's 'Using Model:' line), "
                         f"already the smallest model GSwarm can choose for {gen}")
    assert [st["kind"] for st in h.extra["oom"]["steps"]] == ["alloc"]  # no wasted "same model" rung


def test_ram_oom_on_smallest_e6_model_restarts_after_backoff() -> None:
    """Issue #12: one SIGKILL at the smallest model is no reason to give up (it can be an operator or a cgroup)."""
    d = decide(crash("E6"), RAM, using("Qwen/Qwen2.5-Coder-0.5B-Instruct"), Settings(), T0)
    assert (d.action, d.env, d.alert) == ("restart", {}, True)
    assert d.reason == ("system_oom_killed: out of memory with Qwen/Qwen2.5-Coder-0.5B-Instruct (the node's "
                        "'Using Model:' line), already the smallest model GSwarm can choose for E6; restart after "
                        "backoff (repeated kills end in FATAL)")


def test_random_pick_steps_from_the_model_in_use_and_back() -> None:
    h = using("Qwen/Qwen3-0.6B")  # E4 default pick below 40 GiB VRAM (generations.md §7.4)
    d = decide(crash("E4"), RAM, h, Settings(), T0)
    assert d.env == {"MODEL_NAME": "Gensyn/Qwen2.5-0.5B-Instruct"}
    assert d.detail == "restart with the smaller model Gensyn/Qwen2.5-0.5B-Instruct (MODEL_NAME; was Qwen/Qwen3-0.6B)"
    assert d.data["prev"] == "Qwen/Qwen3-0.6B"
    up = maybe_step_up(h, STEP_UP_AFTER, T0 + STEP_UP_AFTER, "E4")
    assert up is not None and up.env == {"MODEL_NAME": "Qwen/Qwen3-0.6B"}


def test_large_pick_steps_one_rung_not_to_the_bottom() -> None:
    d = decide(crash("E4"), RAM, using("nvidia/AceInstruct-1.5B"), Settings(), T0)  # >= 40 GiB pick (§7.4)
    assert d.env == {"MODEL_NAME": "Gensyn/Qwen2.5-1.5B-Instruct"}
    assert d.detail == ("restart with the smaller model Gensyn/Qwen2.5-1.5B-Instruct "
                        "(MODEL_NAME; was nvidia/AceInstruct-1.5B)")


def test_model_in_use_outranks_the_ladders_own_guess() -> None:
    h = History()
    s = Settings()
    first = decide(crash("E4"), RAM, h, s, T0)  # nothing reported (crashed before "Using Model:"): smallest
    assert first.detail == ("restart with the smaller model Gensyn/Qwen2.5-0.5B-Instruct "
                            "(MODEL_NAME; was the default pick, not named in the output)")
    h.extra["model_in_use"] = "Gensyn/Qwen2.5-0.5B-Instruct"  # the next run confirms it
    d = decide(crash("E4"), RAM, h, s, T0 + 20)  # no rung left: a plain restart (issue #12), no "same model" rung
    assert (d.action, d.env) == ("restart", {"MODEL_NAME": "Gensyn/Qwen2.5-0.5B-Instruct"})
    assert [st["kind"] for st in h.extra["oom"]["steps"]] == ["model"]


def test_long_uptime_at_the_bottom_names_the_model() -> None:
    h = using("Gensyn/Qwen2.5-0.5B-Instruct")
    d = decide(crash("E4", uptime=18 * 3600), RAM, h, Settings(), T0)
    assert (d.action, d.alert) == ("restart", True)
    assert d.reason == ("system_oom_killed after 64800s uptime: out of memory with Gensyn/Qwen2.5-0.5B-Instruct "
                        "(the node's 'Using Model:' line), already the smallest model GSwarm can choose for E4; restart")


def test_e0_e2_ignore_a_reported_model() -> None:
    s7 = Settings().model_copy(update={"model_size": "7"})
    h2 = using("Gensyn/Qwen2.5-0.5B-Instruct")  # E2 has no such line; a stray value must not matter
    ds = [decide(crash("E2"), RAM, h2, s7, T0 + i) for i in range(3)]
    assert [d.model_size for d in ds[:2]] == ["1.5", "0.5"] and all("MODEL_NAME" not in d.env for d in ds)
    assert (ds[2].action, ds[2].reason) == ("restart", "system_oom_killed: out of memory at 0.5B parameters, "
                                                       "the smallest E2 setting; restart after backoff (repeated kills "
                                                       "end in FATAL)")
    d1 = decide(crash("E1"), RAM, using("x/y"), Settings(), T0)
    assert (d1.action, d1.reason) == ("restart", "system_oom_killed: out of memory at the smallest setting GSwarm can "
                                                 "choose; restart after backoff (repeated kills end in FATAL)")


def test_model_line_parser_per_generation() -> None:
    expected = {"e3_swarm_launcher.log": "Gensyn/Qwen2.5-0.5B-Instruct", "e4_swarm_launcher.log": "Qwen/Qwen3-0.6B",
                "e5_swarm_launcher.log": "Gensyn/Qwen2.5-0.5B-Instruct", "e6_stdout.txt": "Qwen/Qwen2.5-Coder-0.5B-Instruct"}
    for name, model in expected.items():
        assert model_in_use((DATA / name).read_text(encoding="utf-8")) == model, name
    assert model_in_use(">> Using model: a/b") is None  # the script's echo of the prompt answer (§6.3)
    assert model_in_use("🐝 Joining round: 5") is None
    assert model_in_use("[x][y][INFO] - Using Model:\n🐝 Joining round: 5") is None  # never the next line's text


def test_progress_service_shares_and_clears_the_model() -> None:
    bus, h = EventBus(), History()
    svc = ProgressService(bus, FakeClock(), "n1", None, "E4", history=lambda: h)
    bus.publish(ProcessStarted("n1", T0, 10, 10, ("python",), "E4", "direct", 1))
    assert "model_in_use" not in h.extra
    line = "[2025-07-27 16:10:31,210][genrl.logging_utils.global_defs][INFO] - Using Model: Qwen/Qwen3-0.6B"
    bus.publish(OutputBatch("n1", T0 + 1, 10, ("bootnodes: []", line, "🐝 Joining round: 7")))
    assert h.extra["model_in_use"] == "Qwen/Qwen3-0.6B" and svc.model == "Qwen/Qwen3-0.6B"
    bus.publish(OutputBatch("other", T0 + 2, 11, ("[x][y][INFO] - Using Model: a/other",)))  # another node
    assert h.extra["model_in_use"] == "Qwen/Qwen3-0.6B"
    bus.publish(ProcessStarted("n1", T0 + 5, 12, 12, ("python",), "E4", "direct", 2))
    assert "model_in_use" not in h.extra  # a new start may pick another model (§7.4)
    bus.publish(OutputLine("n1", T0 + 6, 12, "[x][y][INFO] - Using Model: Gensyn/Qwen2.5-0.5B-Instruct"))
    assert h.extra["model_in_use"] == "Gensyn/Qwen2.5-0.5B-Instruct"


def test_the_model_line_is_searched_until_found_once_per_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """The trainer logs "Using Model:" once per start: after it, a CUDA error flood (every chunk holds the probe
    letter U) costs no model search until the next start (issue #18)."""
    from gswarm.monitor import progress

    calls: list[int] = []
    real = progress.model_in_use
    monkeypatch.setattr(progress, "model_in_use", lambda text: calls.append(1) or real(text))
    bus, h = EventBus(), History()
    ProgressService(bus, FakeClock(), "n1", None, "E4", history=lambda: h)
    bus.publish(ProcessStarted("n1", T0, 10, 10, ("python",), "E4", "direct", 1))
    flood = tuple(f"[t][genrl][ERROR] - RuntimeError: CUDA error: an illegal memory access ({i})" for i in range(50))
    bus.publish(OutputBatch("n1", T0 + 1, 10, flood))
    bus.publish(OutputBatch("n1", T0 + 2, 10, ("[x][y][INFO] - Using Model: Qwen/Qwen3-0.6B",)))
    for i in range(5):
        bus.publish(OutputBatch("n1", T0 + 3 + i, 10, flood))
    assert (len(calls), h.extra["model_in_use"]) == (2, "Qwen/Qwen3-0.6B")  # was 7: every chunk searched
    bus.publish(ProcessStarted("n1", T0 + 9, 12, 12, ("python",), "E4", "direct", 2))
    bus.publish(OutputBatch("n1", T0 + 10, 12, flood + ("[x][y][INFO] - Using Model: a/b",)))
    assert (len(calls), h.extra["model_in_use"]) == (3, "a/b")


async def test_emulated_e4_cuda_oom_on_smallest_model_stops_without_a_wasted_restart(tmp_path: Path) -> None:
    """The tester's reproduction (E4, crash:cuda_oom in every run, no MODEL_NAME): allocator rung, then stop."""
    checkout = init_checkout(tmp_path / "rl", "E4", logged_in=True)
    clock = FakeClock()
    settings = load_settings({
        "rl_swarm_dir": checkout, "state_dir": tmp_path / "st", "stop_timeout": 5,
        "extra_env": {"GSWARM_EMU_PACE": "0.02", "GSWARM_EMU_FAULTS": "crash:cuda_oom@0.3"},
    }, env={})
    rt = Runtime(settings, clock=clock, install_signals=False,
                 services=("gswarm.monitor.progress:create_service", "gswarm.monitor.health:create_service"))
    events: list[Event] = []
    rt.bus.subscribe(events.append)
    task = asyncio.ensure_future(rt.run())

    async def tick() -> None:  # backoff delays pass in fake time; runs stay far below healthy_uptime
        while not task.done():
            clock.advance(0.25)
            await asyncio.sleep(0.02)

    ticker = asyncio.ensure_future(tick())
    try:
        assert await asyncio.wait_for(task, 60) != 0  # stop_and_alert ends gswarm run
        await until(lambda: ticker.done())
        assert sum(isinstance(e, ProcessStarted) for e in events) == 2
        ladder = [e.detail for e in events if isinstance(e, RecoveryAction) and e.recovery == Recovery.REDUCE_MODEL]
        assert ladder == ["restart with PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"]
        stops = [e.reason for e in events if isinstance(e, StateChanged) and e.new.value == "STOPPED"]
        assert stops[-1] == ("cuda_oom: out of memory with Gensyn/Qwen2.5-0.5B-Instruct (the node's 'Using Model:' "
                             "line), already the smallest model GSwarm can choose for E4")
    finally:
        if not task.done():
            rt.request("kill", "test", shutdown=True)
            await asyncio.wait_for(task, 30)
        ticker.cancel()
