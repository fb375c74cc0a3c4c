"""Recovery by cause: every path of gswarm.supervisor.policy with plain ``now`` floats (no sleeping)."""

from __future__ import annotations

import pytest

from gswarm.config import Settings
from gswarm.events import Category, Recovery, Severity
from gswarm.supervisor.policy import (OUTAGE_MAX, OUTAGE_MIN, STEP_UP_AFTER, Classification, ExitInfo, History,
                                      decide, decide_live, maybe_step_up)

T0 = 1_700_000_000.0


def C(cat: Category, rec: Recovery, advice: str = "do this") -> Classification:
    return Classification(cat, rec, Severity.ERROR, cat.value, ("evidence line",), advice)


def crash(uptime: float = 30.0, code: int | None = 1, sig: int | None = None, gen: str = "") -> ExitInfo:
    return ExitInfo(code, sig, uptime, generation=gen)


@pytest.fixture
def s() -> Settings:
    return Settings()


def test_upstream_outage_no_storm_one_alert_never_fatal(s: Settings) -> None:
    h = History()
    boot = C(Category.DHT_BOOTSTRAP_FAILED, Recovery.BACKOFF)
    ds = [decide(crash(), boot, h, s, T0 + i * 60, rand=1.0) for i in range(10)]
    assert [d.action for d in ds] == ["restart"] * 10
    assert [d.delay for d in ds] == [180.0, 360.0, 720.0, 1440.0] + [1800.0] * 6
    assert [d.alert for d in ds] == [True] + [False] * 9
    assert all(d.recovery == Recovery.BACKOFF for d in ds)
    assert h.failures == [] and h.extra["outage"]["count"] == 10
    low = [decide(crash(), C(Category.CHAIN_RPC_UNREACHABLE, Recovery.BACKOFF), h, s, T0 + 999, rand=0.0) for _ in range(3)]
    assert min(d.delay for d in low) == OUTAGE_MIN and not any(d.alert for d in low)


def test_new_outage_after_healthy_run_alerts_again(s: Settings) -> None:
    h = History()
    ping = C(Category.DHT_BOOTSTRAP_PING_FAILED, Recovery.BACKOFF)
    assert decide(crash(), ping, h, s, T0).alert is True
    assert decide(crash(), ping, h, s, T0 + 100).alert is False
    d = decide(crash(uptime=3600.0), ping, h, s, T0 + 5000)
    assert (d.alert, d.delay) == (True, OUTAGE_MIN)


def test_outage_cap_follows_settings(s: Settings) -> None:
    s2 = s.model_copy(update={"backoff_max": 4000.0})
    h = History()
    delays = [decide(crash(), C(Category.HF_DOWNLOAD_ERROR, Recovery.BACKOFF), h, s2, T0).delay for _ in range(8)]
    assert delays[-1] == 4000.0 and OUTAGE_MAX < 4000.0


def test_crash_loop_fatal_for_trainer_bugs(s: Settings) -> None:
    h = History()
    bug = C(Category.TRAINER_BUG_CURRENT_BATCH, Recovery.RESTART)
    ds = [decide(crash(), bug, h, s, T0 + i * 60, rand=1.0) for i in range(5)]
    assert [d.action for d in ds] == ["restart"] * 4 + ["fatal"]
    assert [d.delay for d in ds[:4]] == [5.0, 10.0, 20.0, 40.0]
    assert ds[-1].alert and "5 failures within 600s" in ds[-1].reason


def test_jitter_and_failures_outside_window(s: Settings) -> None:
    h = History()
    bug = C(Category.TRAINER_BUG_SWARM_STATE, Recovery.RESTART)
    assert decide(crash(), bug, h, s, T0, rand=0.5).delay == 2.5
    for i in range(10):  # one failure every 11 minutes never fills the 10-minute window
        assert decide(crash(), bug, h, s, T0 + (i + 1) * 660, rand=1.0).action == "restart"


def test_sigkill_without_traceback_is_system_oom(s: Settings) -> None:
    for code, sig in ((None, 9), (137, None)):
        d = decide(crash(code=code, sig=sig, gen="E4"), Classification(), History(), s, T0)
        assert (d.action, d.category, d.recovery) == ("restart", Category.SYSTEM_OOM_KILLED, Recovery.REDUCE_MODEL)
        assert d.env == {"MODEL_NAME": "Gensyn/Qwen2.5-0.5B-Instruct"}


def test_oom_ladder_steps_down_and_back_up(s: Settings) -> None:
    s2 = s.model_copy(update={"model_name": "Gensyn/Qwen2.5-1.5B-Instruct"})
    h = History()
    oom = C(Category.CUDA_OOM, Recovery.REDUCE_MODEL)
    d1 = decide(crash(uptime=4000, gen="E4"), oom, h, s2, T0)
    assert d1.env == {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"} and d1.recovery == Recovery.REDUCE_MODEL
    assert d1.detail == "restart with PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"
    d2 = decide(crash(uptime=4000, gen="E4"), oom, h, s2, T0 + 5000)
    assert d2.env == {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True", "MODEL_NAME": "Qwen/Qwen3-0.6B"}
    d3 = decide(crash(uptime=4000, gen="E4"), oom, h, s2, T0 + 10000)
    assert d3.env["MODEL_NAME"] == "Gensyn/Qwen2.5-0.5B-Instruct"
    assert [st["kind"] for st in h.extra["oom"]["steps"]] == ["alloc", "model", "model"]
    d4 = decide(crash(uptime=60, gen="E4"), oom, h, s2, T0 + 15000)
    assert (d4.action, d4.alert) == ("stop", True)  # smallest model still OOMs quickly: a human must look
    # a non-OOM restart keeps the ladder's environment
    d5 = decide(crash(gen="E4"), C(Category.TRAINER_BUG_SWARM_STATE, Recovery.RESTART), h, s2, T0 + 16000)
    assert d5.env["MODEL_NAME"] == "Gensyn/Qwen2.5-0.5B-Instruct"
    assert maybe_step_up(h, STEP_UP_AFTER - 1, T0 + 10000 + STEP_UP_AFTER, "E4") is None
    up1 = maybe_step_up(h, STEP_UP_AFTER, T0 + 10000 + STEP_UP_AFTER, "E4")
    assert up1 is not None and up1.env["MODEL_NAME"] == "Qwen/Qwen3-0.6B" and up1.action == "restart"
    assert maybe_step_up(h, STEP_UP_AFTER * 2, T0 + 10000 + STEP_UP_AFTER + 60, "E4") is None  # too soon again
    up2 = maybe_step_up(h, STEP_UP_AFTER * 2, T0 + 10000 + 2 * STEP_UP_AFTER, "E4")
    assert up2 is not None and up2.env == {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
                                           "MODEL_NAME": "Gensyn/Qwen2.5-1.5B-Instruct"}
    assert maybe_step_up(h, STEP_UP_AFTER * 3, T0 + 10000 + 3 * STEP_UP_AFTER, "E4") is None  # allocator rung is kept


def test_oom_ladder_mps_e6_and_e2(s: Settings) -> None:
    h = History()
    mps = C(Category.MPS_OOM, Recovery.REDUCE_MODEL)
    assert decide(crash(gen="E1"), mps, h, s, T0).env == {"PYTORCH_MPS_HIGH_WATERMARK_RATIO": "0.0"}
    assert decide(crash(gen="E1"), mps, h, s, T0 + 10).action == "stop"  # E1 has only the 0.5B config
    h6 = History()
    cuda = C(Category.CUDA_OOM, Recovery.REDUCE_MODEL)
    decide(crash(gen="E6"), cuda, h6, s, T0)
    assert decide(crash(gen="E6"), cuda, h6, s, T0 + 10).env["MODEL_NAME"] == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    h2 = History()
    ram = C(Category.SYSTEM_OOM_KILLED, Recovery.REDUCE_MODEL)
    s7 = s.model_copy(update={"model_size": "7"})
    sizes = [decide(crash(gen="E2"), ram, h2, s7, T0 + i).model_size for i in range(2)]
    assert sizes == ["1.5", "0.5"]
    up = maybe_step_up(h2, STEP_UP_AFTER, T0 + STEP_UP_AFTER + 5, "E2")
    assert up is not None and up.model_size == "1.5"


def test_oom_after_long_uptime_at_the_bottom_restarts(s: Settings) -> None:
    h = History()
    ram = C(Category.SYSTEM_OOM_KILLED, Recovery.REDUCE_MODEL)
    d = decide(crash(uptime=18 * 3600, gen="E1"), ram, h, s, T0)  # case 005: a slow leak; a restart clears it
    assert (d.action, d.alert) == ("restart", True)


def test_reinstall_once_then_stop(s: Settings) -> None:
    h = History()
    dep = C(Category.DEPENDENCY_CONFLICT, Recovery.REINSTALL_DEPS)
    d1 = decide(crash(), dep, h, s, T0)
    assert (d1.action, d1.reinstall, d1.reinstall_target, d1.recovery) == ("restart", True, "python", Recovery.REINSTALL_DEPS)
    modal = decide(crash(), C(Category.MODAL_LOGIN_SERVER_ERROR, Recovery.REINSTALL_DEPS), h, s, T0 + 10)
    assert (modal.reinstall, modal.reinstall_target) == (True, "modal-login")
    d2 = decide(crash(), C(Category.MISSING_BINARY, Recovery.REINSTALL_DEPS), h, s, T0 + 20)
    assert (d2.action, d2.alert, d2.reinstall) == ("stop", True, False)
    assert decide(crash(uptime=3600), dep, h, s, T0 + 9000).reinstall is True  # healthy run in between: once more


@pytest.mark.parametrize("cat", [Category.GPU_ARCH_UNSUPPORTED, Category.SHELL_ENV_ERROR, Category.API_KEY_PENDING,
                                 Category.PEER_ID_ALREADY_REGISTERED, Category.OLLAMA_ERROR, Category.MISSING_BINARY])
def test_stop_and_alert(s: Settings, cat: Category) -> None:
    d = decide(crash(), C(cat, Recovery.STOP_AND_ALERT, "fix it like this"), History(), s, T0)
    assert (d.action, d.alert, d.advice, d.recovery, d.category) == ("stop", True, "fix it like this", Recovery.STOP_AND_ALERT, cat)


def test_identity_taken_cleanup_once_then_stop(s: Settings) -> None:
    h = History()
    ident = C(Category.IDENTITY_TAKEN, Recovery.CLEANUP_THEN_RESTART)
    d1 = decide(crash(), ident, h, s, T0)
    assert (d1.action, d1.cleanup, d1.recovery) == ("restart", True, Recovery.CLEANUP_THEN_RESTART)
    d2 = decide(crash(), ident, h, s, T0 + 30)
    assert (d2.action, d2.alert) == ("stop", True)


def test_dht_daemon_timeout_cleans_up(s: Settings) -> None:
    d = decide(crash(), C(Category.DHT_DAEMON_TIMEOUT, Recovery.CLEANUP_THEN_RESTART), History(), s, T0)
    assert (d.action, d.cleanup, d.delay, d.recovery) == ("restart", True, 5.0, Recovery.CLEANUP_THEN_RESTART)
    slow = decide(crash(), C(Category.DHT_DAEMON_TIMEOUT, Recovery.BACKOFF), History(), s, T0)
    assert (slow.cleanup, slow.delay, slow.alert) == (True, OUTAGE_MIN, True)


def test_wrapper_only_restart_once_then_stop(s: Settings) -> None:
    h = History()
    w = C(Category.WRAPPER_ONLY_ERROR, Recovery.RESTART)
    assert decide(crash(), w, h, s, T0).action == "restart"
    assert decide(crash(), w, h, s, T0 + 30).action == "stop"
    # the banner with a SIGKILL'd trainer is the OOM killer, not an unknown wrapper error
    assert decide(crash(code=None, sig=9, gen="E4"), w, History(), s, T0).category == Category.SYSTEM_OOM_KILLED


def test_exit_zero_cases(s: Settings) -> None:
    game = decide(crash(code=0, gen="E4"), C(Category.GAME_EXCEPTION_EXIT_ZERO, Recovery.RESTART), History(), s, T0)
    assert (game.action, game.category) == ("restart", Category.GAME_EXCEPTION_EXIT_ZERO)
    clean = decide(crash(code=0), Classification(), History(), s, T0)
    assert (clean.action, clean.category) == ("restart", Category.CLEAN_EXIT)
    off = s.model_copy(update={"restart_on_clean_exit": False})
    assert decide(crash(code=0), Classification(), History(), off, T0).action == "none"
    benign = decide(crash(code=3), C(Category.BENIGN_DEPENDENCY_WARNING, Recovery.NONE), History(), s, T0)
    assert (benign.action, benign.category) == ("restart", Category.UNKNOWN_CRASH)


def test_requested_and_stalled(s: Settings) -> None:
    assert decide(ExitInfo(0, None, 5.0, requested=True), Classification(), History(), s, T0).action == "none"
    h = History()
    stalls = [decide(ExitInfo(None, 15, 4000.0, reason="stalled"), Classification(), h, s, T0 + i) for i in range(3)]
    assert [(d.action, d.category, d.delay, d.alert) for d in stalls] == [
        ("restart", Category.STALLED, 5.0, True), ("restart", Category.STALLED, 10.0, False),
        ("restart", Category.STALLED, 20.0, False)]
    assert h.failures == []


def test_decide_live(s: Settings) -> None:
    h = History()
    assert decide_live(C(Category.PEER_ID_ALREADY_REGISTERED, Recovery.STOP_AND_ALERT), h, s, T0).action == "stop"
    up = C(Category.CHAIN_SUBMIT_REJECTED, Recovery.BACKOFF)
    first, second = decide_live(up, h, s, T0), decide_live(up, h, s, T0 + 60)
    assert (first.action, first.alert, second.action, second.alert) == ("none", True, "none", False)
    sw = decide_live(C(Category.TRAINER_ERROR_SWALLOWED, Recovery.RESTART), h, s, T0)
    assert (sw.action, sw.delay) == ("restart", 0.0)
    assert decide_live(C(Category.NONE, Recovery.NONE), h, s, T0).action == "none"
