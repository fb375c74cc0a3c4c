"""Progress parser: recorded output of every generation replayed, exact values; service + file follow."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from gswarm import events as ev
from gswarm.clock import FakeClock
from gswarm.monitor._progress_rules import parse_line
from gswarm.ansi import strip_ansi
from gswarm.monitor.progress import ProgressService, ProgressTracker, create_service

DATA = Path(__file__).parent / "data" / "progress"
T0 = 1_700_000_000.0


def replay(generation: str, name: str) -> tuple[ProgressTracker, list[ev.ProgressUpdate]]:
    t = ProgressTracker("n1", generation)
    out = []
    for i, line in enumerate((DATA / name).read_text(encoding="utf-8").splitlines()):
        u = t.feed(strip_ansi(line), T0 + i)
        if u is not None:
            out.append(u)
    return t, out


def compact(updates: list[ev.ProgressUpdate]) -> list[tuple]:
    return [(u.kind, u.round, u.stage, u.advanced) for u in updates]


def test_e0_follower_skipping_loop_and_round_jump() -> None:
    t, ups = replay("E0", "e0_stdout.txt")
    assert compact(ups) == [
        ("join", 22, 0, True), ("stage", 22, 0, False), ("reward", 22, 0, False), ("stage", 22, 1, True),
        ("stage", 22, 2, True), ("waiting", 22, None, False), ("join", 24, 0, True), ("stage", 24, 0, False)]
    assert ups[2].detail == "reward=0.139375" and ups[5].detail == "skipping"
    assert (t.round, t.stage, t.animal, t.peer_id, t.round_total) == (24, 0, None, None, None)


def test_e1_hello_stages_winners_and_skipped_round_056() -> None:
    t, ups = replay("E1", "e1_stdout.txt")
    peer = "QmQbPrB5AstEMVH9E1t5gc9m4NooSMaCkwQbPrB5AstEMV"
    assert compact(ups) == [
        ("peer", None, None, False), ("hello", None, None, False), ("join", 328, 2, True), ("stage", 328, 2, False),
        ("reward", 328, 2, False), ("stage_done", 328, 2, True), ("winners", 328, None, False), ("waiting", 328, None, False),
        ("join", 329, 0, True), ("stage", 329, 0, False), ("stage_done", 329, 0, True), ("stage", 329, 1, True),
        ("stage_done", 329, 1, True), ("stage", 329, 2, True), ("stage_done", 329, 2, True), ("winners", 329, None, False),
        ("join", 331, 1, True), ("stage", 331, 1, False)]
    assert ups[1].animal == "sleek shaggy gibbon" and ups[1].peer_id == peer
    assert ups[6].detail == f"winners: ['{peer}']" and ups[15].detail == "winners: []"
    assert ups[7].detail == "next check in 5.0s"
    assert (t.round, t.stage, t.animal, t.peer_id) == (331, 1, "sleek shaggy gibbon", peer)


def test_e2_swarm_log_with_timestamps_and_print_mirror() -> None:
    t, ups = replay("E2", "e2_swarm.log")
    assert compact(ups) == [
        ("peer", None, None, False), ("hello", None, None, False), ("join", 646, 2, True), ("stage", 646, 2, False),
        ("reward", 646, 2, False), ("stage_done", 646, 2, True), ("winners", 646, None, False),
        ("waiting", 646, None, False), ("join", 647, 0, True), ("stage", 647, 0, False)]
    assert ups[4].detail == "reward=1.875"
    assert (t.round, t.stage, t.animal, t.peer_id) == (647, 0, "gentle lumbering hare", "QmyGAKHJd7J74KsUAtR2xy1uMkuar2WQi4yGAKHJd7J74K")


@pytest.mark.parametrize("gen,name,animal,peer,rounds", [
    ("E3", "e3_swarm_launcher.log", "fierce silent owl", "QmZGMLpEDYvKfvFVM4T6k8rcHmSAxivW3rZGMLpEDYvKfv", [1042, 1043, 1046]),
    ("E4", "e4_swarm_launcher.log", "nimble prowling tapir", "QmBc4KJMmu6mAEfKhAYEjZLg6KMZ2WH3cSBc4KJMmu6mAE", [13175, 13176, 13177]),
    ("E6", "e6_stdout.txt", "swift amber fox", "QmCubCd2drBqoYkcx6FvJKFmM95cQ8JtqLCubCd2drBqoY", [8801, 8802]),
])
def test_genrl_generations_rounds_total_and_identity(gen: str, name: str, animal: str, peer: str, rounds: list[int]) -> None:
    t, ups = replay(gen, name)
    assert [u.round for u in ups if u.advanced] == rounds
    assert all(u.stage is None for u in ups)
    assert {u.round_total for u in ups if u.kind in ("round", "join")} == {1_000_000}
    assert (t.round, t.animal, t.peer_id, t.round_total) == (rounds[-1], animal, peer, 1_000_000)
    waits = [u for u in ups if u.kind == "waiting"]
    assert [w.round for w in waits] == rounds[:-1] if gen != "E6" else [8801, 8802]
    assert all(w.detail == "next check in 5.0s" and not w.advanced for w in waits)


def test_e6_codezero_banner_and_new_hello_format() -> None:
    _, ups = replay("E6", "e6_stdout.txt")
    assert [(u.kind, u.detail) for u in ups[:2]] == [("swarm", "joining CodeZero swarm"), ("hello", "")]


def test_e5_prediction_market_bet_and_claim() -> None:
    t, ups = replay("E5", "e5_swarm_launcher.log")
    assert compact(ups) == [
        ("hello", None, None, False), ("round", 52310, None, True), ("bet", 52310, None, False), ("waiting", 52310, None, False),
        ("join", 52311, None, True), ("round", 52311, None, False), ("claim", 52311, None, False), ("waiting", 52311, None, False)]
    assert ups[2].detail == "game 42 round 3: 12.50 tokens on choice - B"
    assert ups[6].detail == "claimed reward for game 41"
    assert t.peer_id == "QmAw8cuJfzyXAvcCcuSzrMTnT9BKv819v5Aw8cuJfzyXAv"


def test_prefilter_rejects_ordinary_lines() -> None:
    assert parse_line("Map: 100%|████| 2/2 [00:00<00:00, 204.69 examples/s]") is None
    assert parse_line("[2025-07-27][genrl][INFO] - Using Model: Qwen/Qwen3-0.6B") is None
    assert parse_line("Could not fetch round and stage. Skipping.") is None


def test_waiting_repeats_after_window_and_restart_rejoin_counts() -> None:
    t = ProgressTracker("n1", "E4", repeat_after=600.0)
    assert t.feed("Starting round: 10/1000000.", T0).advanced is True
    assert t.feed("Already finished round: 10. Next check in 5.0s.", T0 + 1).kind == "waiting"
    assert t.feed("Already finished round: 10. Next check in 10.0s.", T0 + 100) is None
    assert t.feed("Already finished round: 10. Next check in 300.0s.", T0 + 700).detail == "next check in 300.0s"
    t.new_run("E4")
    assert t.feed("Starting round: 10/1000000.", T0 + 800).advanced is True  # fresh run rejoins
    assert t.feed("Starting round: 9/1000000.", T0 + 801) is not None and t.best == (10, 0, 0)


def test_swarm_reset_to_lower_round_becomes_baseline_on_new_run() -> None:
    t = ProgressTracker("n1", "E4")
    t.feed("Starting round: 500/1000000.", T0)
    t.new_run("E4")
    assert t.feed("Starting round: 3/1000000.", T0 + 1).advanced is True
    assert t.feed("Starting round: 4/1000000.", T0 + 2).advanced is True


async def test_service_dedupes_stdout_and_files_e3(tmp_path: Path) -> None:
    bus, clock = ev.EventBus(), FakeClock(start=T0)
    checkout = tmp_path / "rl-swarm"
    (checkout / "logs").mkdir(parents=True)
    launcher = checkout / "logs" / "swarm_launcher.log"
    launcher.write_text("[2025-06-26 09:00:00,000][genrl_swarm.logging_utils.global_defs][INFO] - Starting round: 7/1000000.\n")
    got: list[ev.ProgressUpdate] = []
    bus.subscribe(lambda e: got.append(e) if isinstance(e, ev.ProgressUpdate) else None)
    svc = ProgressService(bus, clock, "n1", checkout, "E3", poll_interval=1.0)
    task = asyncio.create_task(svc.run())
    await asyncio.sleep(0)
    assert got == []  # history already in the file is not replayed
    lines = (DATA / "e3_swarm_launcher.log").read_text(encoding="utf-8").splitlines()
    for i in range(0, len(lines), 7):  # the console mirror of the launcher log, in chunks as read
        bus.publish(ev.OutputBatch("n1", clock.time(), 99, tuple(lines[i:i + 7])))
    with launcher.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    shutil.copy(DATA / "e3_training_fierce_silent_owl.log", checkout / "logs" / "training_fierce_silent_owl.log")
    await clock.run_for(2.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [(u.kind, u.round) for u in got] == [
        ("hello", None), ("round", 1042), ("waiting", 1042), ("join", 1043), ("waiting", 1043),
        ("join", 1046), ("round", 1046)]  # chunks of 7 lines: "round 1043" superseded by 1046 in its chunk (state)
    bus.publish(ev.OutputBatch("n1", clock.time(), 99, ("Starting round: 2000/1000000.",)))
    bus.publish(ev.OutputLine("n1", clock.time(), 99, "Starting round: 2001/1000000."))
    assert len(got) == 7  # unsubscribed on cancel


def test_create_service_uses_rt_spec(tmp_path: Path) -> None:
    class Spec:
        cwd = tmp_path
        generation = "E2"

    class Settings:
        rl_swarm_dir = Path("/nonexistent")

    class Rt:
        bus, clock, node, spec, settings = ev.EventBus(), FakeClock(), "n9", Spec(), Settings()

    svc = create_service(Rt())
    assert svc.node == "n9" and [f.path.name for f in svc.followers] == ["swarm.log"]
    assert svc.tracker.family == "hivemind"
