"""Issue #12, the fast parts: login-file keeping, script-mode environment and prompts, login-wait detection,
the SIGKILL rung of the policy, direct-mode environment parity and the plan's written exceptions."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from collections import deque
from pathlib import Path

import pytest

from gswarm.config import Settings, load_settings
from gswarm.emulator.checkout import init_checkout, write_login
from gswarm.events import Category, EventBus, NodeState, Notice, Recovery, Severity
from gswarm.rlswarm import _eras, _parity, identity
from gswarm.rlswarm.launch import build_launch_spec
from gswarm.supervisor import policy
from gswarm.supervisor._classify import ExitClassifier
from gswarm.supervisor._scriptenv import drop_login_preamble, node_environ, with_model
from gswarm.supervisor.scriptmode import ScriptRun
from gswarm.supervisor.spec import LaunchSpec, PromptAnswer
from gswarm.supervisor.state import StateMachine

T0 = 1_700_000_000.0


# ------------------------------------------------------------------ login files
def _logged_in(tmp: Path) -> tuple[Path, Path, str]:
    co = tmp / "co"
    org = write_login(co)
    return co, tmp / "state", org


def test_keep_login_backs_up_then_restores_deleted_files(tmp_path: Path) -> None:
    co, state, org = _logged_in(tmp_path)
    assert identity.keep_login(co, state) == [f"login files backed up to {identity.backup_dir(state, co)} (0600)"]
    assert identity.keep_login(co, state) == []  # unchanged: no second backup note
    for name in identity.LOGIN_FILES:
        (identity.temp_data(co) / name).unlink()  # the script's EXIT trap
    assert identity.keep_login(co, state) == ["restored userData.json from backup", "restored userApiKey.json from backup"]
    assert identity.read_org_id(identity.temp_data(co) / "userData.json") == org
    for name in identity.LOGIN_FILES:
        assert stat.S_IMODE(os.stat(identity.backup_dir(state, co) / name).st_mode) == 0o600


def test_keep_login_replaces_a_corrupt_user_data_from_the_backup(tmp_path: Path) -> None:
    co, state, org = _logged_in(tmp_path)
    identity.keep_login(co, state)
    user = identity.temp_data(co) / "userData.json"
    user.write_text("{trunc")  # an interrupted write
    notes = identity.keep_login(co, state)
    assert notes == [f"restored the login files from the backup: {user} is not a JSON object with the user's ORG_ID as first key"]
    assert identity.read_org_id(user) == org


def test_keep_login_never_backs_up_an_unactivated_login(tmp_path: Path) -> None:
    co, state, org = _logged_in(tmp_path)
    key = identity.temp_data(co) / "userApiKey.json"
    data = json.loads(key.read_text())
    data[org][-1]["activated"] = False
    key.write_text(json.dumps(data))
    assert identity.keep_login(co, state) == []
    assert identity.backed_up_org_id(co, state) is None


# ------------------------------------------------------------------ script-mode environment and prompts
def test_node_environ_drops_gswarm_settings_and_model_name() -> None:
    env = node_environ({"PATH": "/bin", "GSWARM_HF_TOKEN": "hf_x", "GSWARM_STATE_DIR": "/s", "MODEL_NAME": "",
                        "HF_TOKEN": "hf_y"})
    assert env == {"PATH": "/bin", "HF_TOKEN": "hf_y"}


def _spec(prompts: tuple[PromptAnswer, ...] = (), cwd: Path = Path("/")) -> LaunchSpec:
    return LaunchSpec(argv=("bash", "run.sh"), cwd=cwd, env={}, mode="script", generation="E4", prompts=prompts,
                      use_pty=True, watch_pattern=r"-c .*trainer")


def test_ladder_model_becomes_the_model_prompt_answer() -> None:
    spec = _spec((PromptAnswer("hf_push", "hf", "N"), PromptAnswer("model_name", "model", "")))
    prompts, extra = with_model(spec, {"MODEL_NAME": "Qwen/Qwen3-0.6B", "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"})
    assert [(p.name, p.answer) for p in prompts] == [("hf_push", "N"), ("model_name", "Qwen/Qwen3-0.6B")]
    assert extra == {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}  # never exported to the script
    prompts, extra = with_model(spec, {"MODEL_NAME": ""})
    assert [p.answer for p in prompts] == ["N", ""] and extra == {}


@pytest.mark.parametrize("gen, has_hf_token", [("E1", True), ("E4", True), ("E5", False), ("E6", False)])
def test_script_mode_hf_token_only_where_the_script_reads_it(tmp_path: Path, gen: str, has_hf_token: bool) -> None:
    co = init_checkout(tmp_path / "co", gen, logged_in=True)
    s = load_settings({"rl_swarm_dir": co, "via_script": True, "hf_token": "hf_secret"}, env={})
    spec = build_launch_spec(s, co)
    assert ("HF_TOKEN" in spec.env) is has_hf_token
    assert not [k for k in spec.env if k.startswith("GSWARM_") and not k.startswith("GSWARM_EMU_")]
    assert [p.answer for p in spec.prompts if p.name == "hf_token"] == ["hf_secret"]  # E5/E6: by the prompt


# ------------------------------------------------------------------ login wait seen by ScriptRun
LOGIN_SCRIPT = """echo ">> Waiting for modal userData.json to be created..."
while [ ! -f "modal-login/temp-data/userData.json" ]; do sleep 0.05; done
echo "Found userData.json. Proceeding..."
echo "Waiting for API key to become activated..."
echo "API key is activated! Proceeding..."
"""


async def _login_run(tmp: Path, logged_in: bool) -> tuple[list[tuple[bool, float]], list[Notice], ScriptRun]:
    (tmp / "run.sh").write_text(LOGIN_SCRIPT)
    if logged_in:
        write_login(tmp)
    now = [0.0]
    edges: list[tuple[bool, float]] = []
    bus = EventBus()
    notices: list[Notice] = []
    bus.subscribe(lambda e: notices.append(e) if isinstance(e, Notice) else None)
    r = ScriptRun(_spec(cwd=tmp), "n", bus, time.time, poll=0.05, stop_timeout=2,
                  on_login_wait=lambda w, ts: edges.append((w, now[0])), monotonic=lambda: now[0])
    await r.start()
    if not logged_in:
        for _ in range(500):
            if edges:
                break
            await asyncio.sleep(0.01)
        now[0] = 42.0  # the operator needed 42 s
        write_login(tmp)
    await asyncio.wait_for(r.wait(), 20)
    return edges, notices, r


async def test_wait_line_with_a_valid_login_is_no_login_wait(tmp_path: Path) -> None:
    """The script prints its wait line before it checks for the file: with the file there, nobody is needed."""
    edges, notices, r = await _login_run(tmp_path, logged_in=True)
    assert (edges, notices, r.login_waited) == ([], [], 0.0)


async def test_missing_login_is_a_wait_with_its_duration(tmp_path: Path) -> None:
    edges, notices, r = await _login_run(tmp_path, logged_in=False)
    assert edges == [(True, 0.0), (False, 42.0)] and r.login_waited == 42.0
    assert notices == []  # the watcher (on_login_wait) raises the one "needs you" notice, not ScriptRun


def test_waiting_login_is_live_but_not_running() -> None:
    sm = StateMachine("n", EventBus(), lambda: T0)
    for s in (NodeState.STARTING, NodeState.RUNNING, NodeState.WAITING_LOGIN, NodeState.RUNNING,
              NodeState.WAITING_LOGIN, NodeState.BACKOFF):
        sm.move(s)
    assert sm.state == NodeState.BACKOFF


def test_login_preamble_no_longer_classifies_a_sigkill_as_api_key_pending() -> None:
    """Regression: "Waiting for API key to become activated..." (printed on every testnet start) in the exit tail
    turned a trainer killed without traceback into api_key_pending → stop and alert."""
    lines = ["Your ORG_ID is set to: x", "Waiting for API key to become activated...", "API key is activated! Proceeding...",
             ">> Good luck in the swarm!"]
    before = ExitClassifier("E4")
    before.feed(lines)
    assert before.classify(None, 9).category == Category.API_KEY_PENDING  # what the watcher saw before the fix
    after = ExitClassifier("E4")
    after.feed(lines)
    drop_login_preamble(after.tail)
    assert list(after.tail) == [">> Good luck in the swarm!"]
    cls = after.classify(None, 9)
    assert policy.effective(policy.ExitInfo(None, 9, 5.0), cls).category == Category.SYSTEM_OOM_KILLED
    assert drop_login_preamble(deque(["a"])) is None


# ------------------------------------------------------------------ SIGKILL at the smallest setting
KILLED = policy.Classification()  # nothing in the output: the policy makes it system_oom_killed


@pytest.mark.parametrize("gen, history", [
    ("E0", {}), ("E1", {}), ("E2", {"oom": {"alloc": False, "model": None, "configured": None, "size": "0.5",
                                           "steps": [], "since": None}}),
    ("E3", {"model_in_use": "Gensyn/Qwen2.5-0.5B-Instruct"}), ("E4", {"model_in_use": "Gensyn/Qwen2.5-0.5B-Instruct"}),
    ("E5", {"model_in_use": "Gensyn/Qwen2.5-0.5B-Instruct"}), ("E6", {"model_in_use": "Qwen/Qwen2.5-Coder-0.5B-Instruct"}),
])
def test_sigkill_at_the_smallest_model_backs_off_then_crash_loop(gen: str, history: dict) -> None:
    s = Settings().model_copy(update={"backoff_jitter": False, "crash_loop_max": 3, "crash_loop_window": 600})
    h = policy.History(extra=json.loads(json.dumps(history)))
    kill = policy.ExitInfo(None, 9, 20.0, generation=gen)
    d1 = policy.decide(kill, KILLED, h, s, T0)
    assert (d1.action, d1.delay, d1.category, d1.alert) == ("restart", s.backoff_initial, Category.SYSTEM_OOM_KILLED, True)
    assert d1.reason.endswith("restart after backoff (repeated kills end in FATAL)")
    assert "restarts it after a backoff" in d1.advice and "crash-loop budget" in d1.advice
    d2 = policy.decide(kill, KILLED, h, s, T0 + 30)
    assert (d2.action, d2.delay, d2.alert) == ("restart", s.backoff_initial * s.backoff_factor, False)
    d3 = policy.decide(kill, KILLED, h, s, T0 + 60)
    assert (d3.action, d3.reason) == ("fatal", "crash loop: 3 failures within 600s (last: system_oom_killed)")


def test_cuda_oom_at_the_smallest_model_still_stops() -> None:
    """Only the SIGKILL rung changed: a CUDA OOM traceback at the smallest model is deterministic."""
    h = policy.History(extra={"model_in_use": "Gensyn/Qwen2.5-0.5B-Instruct",
                              "oom": {"alloc": True, "model": None, "configured": None, "size": "0.5", "steps": [], "since": None}})
    cuda = policy.Classification(Category.CUDA_OOM, Recovery.REDUCE_MODEL, Severity.ERROR, "cuda_oom", (), "advice")
    assert policy.decide(policy.ExitInfo(1, None, 20.0, generation="E4"), cuda, h, Settings(), T0).action == "stop"


# ------------------------------------------------------------------ direct-mode environment parity
@pytest.mark.parametrize("gen", ["E0", "E1", "E2", "E3", "E4", "E5", "E6"])
def test_direct_env_has_every_launcher_export(tmp_path: Path, gen: str) -> None:
    co = init_checkout(tmp_path / "co", gen, logged_in=True)
    spec = build_launch_spec(load_settings({"rl_swarm_dir": co}, env={}), co, has_gpu=False)
    missing = [n for n in _parity.LAUNCHER_ENV[gen] if n not in spec.env]
    assert missing == []


@pytest.mark.parametrize("gen, testnet, word", [("E1", True, "True"), ("E1", False, "False"), ("E2", True, "true"),
                                                ("E2", False, "false")])
def test_connect_to_testnet_spelling_per_generation(tmp_path: Path, gen: str, testnet: bool, word: str) -> None:
    co = init_checkout(tmp_path / "co", gen, logged_in=True)
    spec = build_launch_spec(load_settings({"rl_swarm_dir": co, "testnet": testnet}, env={}), co, has_gpu=False)
    assert spec.env["CONNECT_TO_TESTNET"] == word
    assert (spec.env["ORG_ID"] != "") is testnet
    assert (spec.env["PEER_MULTI_ADDRS"], spec.env["IDENTITY_PATH"]) == (_eras.PEER_MULTI_ADDRS, str(co / "swarm.pem"))


def test_e5_exports_prg_contract(tmp_path: Path) -> None:
    co = init_checkout(tmp_path / "co", "E5", logged_in=True)
    spec = build_launch_spec(load_settings({"rl_swarm_dir": co}, env={}), co)
    assert (spec.env["PRG_CONTRACT"], spec.env["PRG_GAME"]) == ("0x51D4db531ae706a6eC732458825465058fA23a35", "true")


def test_plan_json_lists_launcher_env_and_written_exceptions(tmp_path: Path) -> None:
    from gswarm.cli.plan import plan_json

    co = init_checkout(tmp_path / "co", "E2", logged_in=True)
    data = plan_json(load_settings({"rl_swarm_dir": co, "hf_token": "hf_secret"}, env={}))
    assert sorted(data["launcher_env"]) == sorted(_parity.LAUNCHER_ENV["E2"])
    assert data["launcher_env"]["CONNECT_TO_TESTNET"] == "true"
    assert [e["name"] for e in data["env_exceptions"]] == ["PYTHONUNBUFFERED", "HF_TOKEN", "HUGGINGFACE_ACCESS_TOKEN",
                                                           "GSWARM_RUN_MARKER"]
    assert "hf_secret" not in json.dumps(data)
    script = plan_json(load_settings({"rl_swarm_dir": co, "via_script": True, "hf_token": "hf_secret"}, env={}))
    assert [e["name"] for e in script["env_exceptions"]] == ["GSWARM_*", "MODEL_NAME", "HF_TOKEN", "GSWARM_RUN_MARKER"]
    assert set(script["launcher_env"].values()) == {"(set by run_rl_swarm.sh)"}


async def test_auto_setup_repairs_a_corrupt_login_before_anything_reads_it(tmp_path: Path) -> None:
    """prepare_node (gswarm run's default auto-setup) used to stop with LoginError on a corrupt userData.json
    although a valid backup existed."""
    from gswarm.rlswarm.login import prepare_node

    co = init_checkout(tmp_path / "co", "E4", logged_in=True)
    state = tmp_path / "state"
    org = identity.read_org_id(identity.temp_data(co) / "userData.json")
    identity.keep_login(co, state)
    (identity.temp_data(co) / "userData.json").write_bytes(b'{"cut-off')
    settings = load_settings({"rl_swarm_dir": co, "via_script": True}, env={})
    node = await prepare_node(settings, state_dir=state, lock_dir=tmp_path / "locks")
    try:
        assert [n for n in node.notes if n.startswith("restored the login files")] == [
            f"restored the login files from the backup: {identity.temp_data(co) / 'userData.json'} is not a JSON "
            "object with the user's ORG_ID as first key"]
        assert identity.read_org_id(identity.temp_data(co) / "userData.json") == org
    finally:
        await node.close()


async def test_direct_login_replaces_a_corrupt_user_data_from_the_backup(tmp_path: Path) -> None:
    """Direct mode with auto-setup (ensure_login) stopped with LoginError on a corrupt userData.json although a
    valid backup existed; now the backup replaces it and the login goes on without the browser."""
    from gswarm.clock import FakeClock
    from gswarm.emulator.modal_server import ModalServer
    from gswarm.rlswarm import login
    from tests.test_setup_support import drive, lay_checkout

    co = lay_checkout(tmp_path / "rl", "E4")
    server = ModalServer(co).start()
    clock = FakeClock()
    try:
        org = server.login()
        first = await drive(asyncio.create_task(login.ensure_login(co, tmp_path / "s", port=server.port, clock=clock,
                                                                   env={})), clock)
        (identity.temp_data(co) / "userData.json").write_text('{"cut-off')
        again = await drive(asyncio.create_task(login.ensure_login(co, tmp_path / "s", port=server.port, clock=clock,
                                                                   env={}, login_timeout=1)), clock)
    finally:
        server.stop()
    assert first == again == org
    assert identity.read_org_id(identity.temp_data(co) / "userData.json") == org


async def test_a_failed_trainer_lets_the_scripts_exit_trap_finish(tmp_path: Path) -> None:
    """Regression: GSwarm sent SIGTERM to the script's group as soon as the trainer's status was known, cutting
    the EXIT trap short before it deleted the login files — so restarts sometimes ran with, sometimes
    without them. Now a failed trainer's script gets ``infer_grace`` s to finish its own cleanup."""
    import sys

    (tmp_path / "run.sh").write_text('set -euo pipefail\ntrap \'sleep 0.3; rm -f "$PWD/login.json"\' EXIT\n'
                                     '"$PY" -c "import time, sys; time.sleep(0.3); sys.exit(3)" trainer\nwait\n')
    (tmp_path / "login.json").write_text("{}")
    spec = LaunchSpec(argv=("bash", "run.sh"), cwd=tmp_path, env={"PY": sys.executable}, mode="script",
                      generation="E4", use_pty=True, watch_pattern=r"-c .* trainer")
    r = ScriptRun(spec, "n", EventBus(), time.time, poll=0.02, stop_timeout=2, infer_grace=3.0,
                  read_zombie=lambda pid: 3 << 8)  # GSwarm won the race for the zombie: the status is known at once
    await r.start()
    st = await asyncio.wait_for(r.wait(), 20)
    assert (st.exit_code, r.py_pid is not None) == (3, True)
    assert not (tmp_path / "login.json").exists()


def test_a_crash_loop_of_one_failure_says_failure() -> None:
    """Newcomer trial (issue #18 session): ``--crash-loop-max 1`` gave "crash loop: 1 failures within 600s"."""
    from types import SimpleNamespace

    from gswarm.events import Category, Recovery
    from gswarm.supervisor import policy

    settings = SimpleNamespace(crash_loop_window=600.0, crash_loop_max=1, backoff_max=300.0, backoff_initial=5.0,
                               backoff_factor=2.0, backoff_jitter=False)
    cls = policy.Classification(Category.SYSTEM_OOM_KILLED, Recovery.RESTART)
    d = policy._restart(cls, policy.History(), settings, 100.0, 1.0, "E4")
    assert (d.action, d.reason) == ("fatal", "crash loop: 1 failure within 600s (last: system_oom_killed)")
