"""Event → message translation: every kind with its severity and text."""

from __future__ import annotations

from gswarm.events import (Category, Incident, NodeState, Notice, ProcessExited, ProgressUpdate, Recovery,
                           ResourceSample, RestartScheduled, Severity, StateChanged)
from gswarm.notify.rules import Rules

T = 1_800_000_000.0


def test_crash_with_cause_exit_and_advice() -> None:
    r = Rules()
    assert r.translate(ProcessExited("n1", T, 4242, 1, None, 754.0)) == []
    (m,) = r.translate(Incident("n1", T + 1, Category.CUDA_OOM, Recovery.REDUCE_MODEL, Severity.ERROR, "cuda-oom",
                                ("torch.OutOfMemoryError: CUDA out of memory",), "Use a smaller model."))
    assert (m.kind, m.severity, m.key) == ("crashed", Severity.ERROR, "cuda_oom")
    assert m.title == "[n1] crashed: cuda oom"
    assert m.body == ("Cause: cuda oom (rule cuda-oom, recovery reduce_model)\nExit: exit code 1 after 12.6 min"
                      "\nWhat to do: Use a smaller model.\nEvidence: torch.OutOfMemoryError: CUDA out of memory")


def test_signal_exit_and_live_incident() -> None:
    r = Rules()
    r.translate(ProcessExited("n1", T, 1, None, 9, 60.0))
    (m,) = r.translate(Incident("n1", T, Category.SYSTEM_OOM_KILLED, Recovery.RESTART, Severity.WARNING, "oom", ()))
    assert m.severity == Severity.ERROR and "Exit: signal 9 after 1.0 min" in m.body
    # an incident while the node runs is left to the health monitor's Notice
    assert r.translate(Incident("n1", T + 3600, Category.TRAINER_ERROR_SWALLOWED, Recovery.RESTART,
                                Severity.ERROR, "swallowed", ())) == []


def test_watcher_and_health_notices_do_not_repeat_alerts() -> None:
    r = Rules()
    (m,) = r.translate(StateChanged("n1", T, NodeState.BACKOFF, NodeState.FATAL, "5 failures in 600 s"))
    assert r.translate(Notice("n1", T, "fatal", Severity.CRITICAL, "node n1 gave up: 5 failures in 600 s")) == []
    (s,) = r.translate(Notice("n1", T, "stalled", Severity.WARNING, "node n1 stalled", "no progress for 1800 s"))
    assert (s.kind, s.title) == ("stalled", "[n1] node n1 stalled")
    assert r.translate(StateChanged("n1", T + 1, NodeState.RUNNING, NodeState.STALLED, "stall")) == []
    (n,) = r.translate(Notice("n2", T, "stopped", Severity.ERROR, "node n2 stopped: identity taken", "Fix it."))
    assert (n.kind, n.severity) == ("needs_you", Severity.ERROR)
    assert r.translate(Notice("n2", T + 1, "fatal", Severity.CRITICAL, "node n2 gave up")) == []
    (live,) = r.translate(Incident("n3", T, Category.IDENTITY_TAKEN, Recovery.STOP_AND_ALERT, Severity.CRITICAL, "id", ()))
    assert r.translate(Notice("n3", T, "identity_taken", Severity.ERROR, "node n3: identity taken")) == []
    (other,) = r.translate(Notice("n3", T, "trainer_error_swallowed", Severity.WARNING, "node n3: errors"))
    assert (live.kind, other.kind) == ("needs_you", "trainer_error_swallowed")
    later = r.translate(StateChanged("n1", T + 3600, NodeState.BACKOFF, NodeState.FATAL, "again"))
    assert [x.kind for x in later] == ["crash_loop"]


def test_needs_you_then_fatal_is_one_message() -> None:
    r = Rules()
    (m,) = r.translate(Incident("n1", T, Category.IDENTITY_TAKEN, Recovery.STOP_AND_ALERT, Severity.CRITICAL,
                                "identity", ("peer id already in use",), "Stop the other node using this swarm.pem."))
    assert (m.kind, m.severity) == ("needs_you", Severity.CRITICAL)
    assert m.title == "[n1] needs you: identity taken"
    assert "What to do: Stop the other node using this swarm.pem." in m.body
    assert r.translate(StateChanged("n1", T + 1, NodeState.BACKOFF, NodeState.FATAL, "identity taken")) == []


def test_fatal_crash_loop_and_stalled() -> None:
    r = Rules()
    (m,) = r.translate(StateChanged("n1", T, NodeState.BACKOFF, NodeState.FATAL, "5 failures in 600 s"))
    assert (m.kind, m.severity, m.title) == ("crash_loop", Severity.CRITICAL, "[n1] gave up: crash loop (FATAL)")
    assert m.body.startswith("5 failures in 600 s\nWhat to do: run `gswarm diagnose`")
    (s,) = r.translate(StateChanged("n1", T, NodeState.RUNNING, NodeState.STALLED, "no progress for 1800 s"))
    assert (s.kind, s.severity, s.body) == ("stalled", Severity.WARNING, "no progress for 1800 s")


def test_recovered_only_after_failure_and_progress() -> None:
    r = Rules()
    assert r.translate(StateChanged("n1", T, NodeState.STARTING, NodeState.RUNNING)) == []
    assert r.translate(ProgressUpdate("n1", T + 5, "round", round=10, advanced=True)) == []  # first start: no news
    r.translate(RestartScheduled("n1", T + 10, 5.0, Category.CUDA_OOM, Recovery.RESTART, 1))
    assert r.translate(StateChanged("n1", T + 16, NodeState.STARTING, NodeState.RUNNING)) == []
    assert r.translate(ProgressUpdate("n1", T + 20, "waiting", advanced=False)) == []
    (m,) = r.translate(ProgressUpdate("n1", T + 30, "round", round=11, advanced=True))
    assert (m.kind, m.severity, m.body) == ("recovered", Severity.WARNING,
                                            "Running again after a failure and progress resumed (round 11).")
    assert r.translate(ProgressUpdate("n1", T + 40, "round", round=12, advanced=True)) == []


def test_disk_low_and_gpu_hot_thresholds() -> None:
    r = Rules(disk_low_bytes=5 * 1024**3, gpu_hot_celsius=85)
    ok = ResourceSample("n1", T, {"disk_free_bytes": 6 * 1024**3, "state_disk_free_bytes": 5 * 1024**3,
                                  "gpu": [{"temperature_celsius": 85}]})
    assert r.translate(ok) == []
    bad = ResourceSample("n1", T, {"disk_free_bytes": 3 * 1024**3, "state_disk_free_bytes": 9 * 1024**3,
                                   "gpu": [{"temperature_celsius": 70}, {"temperature_celsius": 91}]})
    disk, gpu = r.translate(bad)
    assert (disk.kind, disk.key, disk.title) == ("disk_low", "disk_free_bytes", "[n1] disk low: 3.0 GiB free (checkout)")
    assert (gpu.kind, gpu.key, gpu.title) == ("gpu_hot", "gpu1", "[n1] GPU 1 too hot: 91 °C")


def test_login_soon_notice_and_benign() -> None:
    r = Rules()
    (m,) = r.translate(Incident("n1", T, Category.API_KEY_PENDING, Recovery.WAIT, Severity.WARNING, "api", ()))
    assert (m.kind, m.severity) == ("login_soon", Severity.WARNING)
    assert r.translate(Incident("n1", T, Category.ROUND_SKIP_BENIGN, Recovery.NONE, Severity.INFO, "skip", ())) == []
    (n,) = r.translate(Notice("n1", T, "login_expiring", Severity.WARNING, "Login expires in 2 days", "Run gswarm login."))
    assert (n.kind, n.severity, n.title, n.body) == ("login_expiring", Severity.WARNING,
                                                     "[n1] Login expires in 2 days", "Run gswarm login.")
    assert r.lifecycle("n1", T, started=True).title == "[n1] GSwarm started supervising"
