"""Structural classification (issue #17): the final exception of the last traceback, its raising frame and the
process exit decide before banners and free-text markers; the new categories and their recoveries through the policy.

Excerpts are real report lines (personal details replaced) from the cases named in each test; the wild corpus in
tests/data/failures_wild/ holds them whole.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from gswarm.config import Settings
from gswarm.events import Category, Recovery
from gswarm.logs._structure import frame_of, parse
from gswarm.logs.classify import Classifier, StreamClassifier
from gswarm.supervisor.policy import ExitInfo, History, decide

T0 = 1_700_000_000.0
SITE = "/root/rl-swarm/.venv/lib/python3.12/site-packages"


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier.from_package()


def lines_of(text: str) -> list[str]:
    return text.strip("\n").splitlines()


# rl-swarm#304 with the final line of its title: a training banner, project frames, then a TypeError about a
# library method's arguments (trl vs transformers). Before #17 the banner rule won: trainer_bug_current_batch/restart.
BANNER_THEN_TYPEERROR = lines_of(f'''
ERROR:hivemind_exp.trainer.hivemind_grpo_trainer:stealthy wily seahorse:Encountered error during training!
Traceback (most recent call last):
  File "/app/hivemind_exp/trainer/hivemind_grpo_trainer.py", line 335, in train
    self._train()
  File "/app/hivemind_exp/trainer/hivemind_grpo_trainer.py", line 178, in train_stages
    self.train_stage_and_save(trainer, train_dataset)
  File "{SITE}/transformers/trainer.py", line 2245, in train
    return inner_training_loop(
TypeError: GRPOTrainer._get_train_sampler() takes 1 positional argument but 2 were given
''')


def test_parse_final_exception_frame_and_start() -> None:
    st = parse(list(enumerate(BANNER_THEN_TYPEERROR)))
    exc = st.exception
    assert exc is not None
    assert (exc.type, exc.name, exc.index, exc.start) == ("TypeError", "TypeError", 8, 1)
    assert exc.message == "GRPOTrainer._get_train_sampler() takes 1 positional argument but 2 were given"
    assert exc.frame is not None and (exc.frame.kind, exc.frame.module, exc.frame.line, exc.frame.index) == (
        "site-packages", "transformers", 2245, 6)


def test_frame_kinds() -> None:
    assert frame_of("<frozen runpy>", 198, "_run_module_as_main", 0).kind == "stdlib"
    assert frame_of("/usr/lib/python3.10/concurrent/futures/_base.py", 403, "x", 0).kind == "stdlib"
    f = frame_of("/usr/local/lib/python3.10/dist-packages/hivemind/dht/dht.py", 87, "x", 0)
    assert (f.kind, f.module) == ("site-packages", "hivemind")
    f = frame_of("/home/user/rl-swarm/rgym_exp/src/data.py", 297, "x", 0)
    assert (f.kind, f.module) == ("project", "rgym_exp")
    assert frame_of("<string>", 169, "__init__", 0).kind == "other"


def test_last_traceback_wins_and_stack_info_block_is_ignored() -> None:
    # rl-swarm#385 shape: exception, then logging's "Stack (most recent call last):" frames (no exception after them)
    text = lines_of(f'''
Traceback (most recent call last):
  File "{SITE}/genrl/game/game_manager.py", line 169, in run_game
    self.run_game_round()
KeyError: 'early'
Traceback (most recent call last):
  File "{SITE}/genrl/trainer/grpo_trainer.py", line 425, in step
    rewards = torch.tensor(rewards)
ValueError: expected sequence of length 2 at dim 1 (got 4)
Stack (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "/home/gensyn/rl_swarm/rgym_exp/runner/swarm_launcher.py", line 29, in <module>
    main()
''')
    exc = parse(list(enumerate(text))).exception
    assert (exc.type, exc.index, exc.start, exc.frame.module) == ("ValueError", 7, 4, "genrl")


def test_cut_paste_leaves_the_raising_frame_unknown() -> None:
    text = lines_of('''
Traceback (most recent call last):
  File "/root/rl-swarm/hivemind_exp/trainer/hivemind_grpo_trainer.py", line 181, in train_stages
    self.train_stage_and_save(trainer, train_dataset)
[...]
NameError: name 'is_torch_version' is not defined. Did you mean: 'torch_version'?
''')
    exc = parse(list(enumerate(text))).exception
    assert (exc.type, exc.frame) == ("NameError", None)


def test_banner_is_context_when_a_final_exception_exists(clf: Classifier) -> None:
    """The issue's first example: the banner rule (trainer bug → restart) no longer decides; the TypeError about a
    library method's arguments does (version mismatch → reinstall)."""
    got = clf.classify_lines(BANNER_THEN_TYPEERROR, "E2")
    assert (got.category, got.recovery, got.rule_id) == (Category.DEPENDENCY_CONFLICT, Recovery.REINSTALL_DEPS,
                                                        "struct_api_mismatch")
    assert got.evidence == (f'File "{SITE}/transformers/trainer.py", line 2245, in train',
                            "TypeError: GRPOTrainer._get_train_sampler() takes 1 positional argument but 2 were given")
    # without a final exception the banner still classifies as before
    assert clf.classify_lines(BANNER_THEN_TYPEERROR[:1], "E2").rule_id == "encountered_error_training"


def test_nameerror_inside_site_packages_is_a_version_mismatch(clf: Classifier) -> None:
    lines = ["Traceback (most recent call last):", f'  File "{SITE}/accelerate/utils/imports.py", line 40, in f',
             "    return is_torch_version('>=', '2.0')", "NameError: name 'is_torch_version' is not defined"]
    got = clf.classify_lines(lines)
    assert (got.category, got.recovery, got.rule_id) == (Category.DEPENDENCY_CONFLICT, Recovery.REINSTALL_DEPS,
                                                        "struct_library_mismatch")
    # the same NameError raised in the project's own code is not called a dependency problem
    own = ["Traceback (most recent call last):", '  File "/root/rl-swarm/rgym_exp/src/manager.py", line 9, in f',
           "    x = helper()", "NameError: name 'helper' is not defined"]
    assert clf.classify_lines(own).category == Category.UNKNOWN_CRASH


def test_unknown_crash_names_the_final_exception_and_frame(clf: Classifier) -> None:
    lines = [">> An error was detected while running rl-swarm. See /home/user/rl-swarm/logs for full logs.",
             "Traceback (most recent call last):", '  File "/home/user/rl-swarm/rgym_exp/src/data.py", line 77, in load',
             "    rows = parse(blob)", "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
             ">> Shutting down trainer..."]
    got = clf.classify_lines(lines, exit_code=1)
    assert (got.category, got.recovery, got.rule_id) == (Category.UNKNOWN_CRASH, Recovery.RESTART, "struct_unknown_exception")
    assert got.evidence == ('File "/home/user/rl-swarm/rgym_exp/src/data.py", line 77, in load',
                            "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)")
    assert "json.decoder.JSONDecodeError: Expecting value" in got.advice and "data.py:77 (project, rgym_exp)" in got.advice


@pytest.mark.parametrize("lines", [
    # a dead node whose decisive line is a socket error (rl-swarm#475) or a bash syntax error (zunxbt/gensyn-testnet#24)
    ['  File "/usr/lib/python3.12/concurrent/futures/_base.py", line 401, in __get_result', "    raise self._exception",
     "ConnectionRefusedError: [Errno 111] Connection refused"],
    ["./run_rl_swarm.sh: line 752: syntax error near unexpected token `)'"],
    ["socket.gaierror: [Errno -2] Name or service not known"],
])
def test_dead_node_with_socket_or_syntax_error_is_not_none(clf: Classifier, lines: list[str]) -> None:
    got = clf.classify_lines(lines)
    assert got.category in (Category.NETWORK_ERROR, Category.SCRIPT_SYNTAX_ERROR), got
    assert got.recovery in (Recovery.BACKOFF, Recovery.STOP_AND_ALERT)


CASES = [
    # (excerpt, category, recovery, rule_id); sources: rl-swarm#214, #299, #148, Mayankgg01 guide#40, #351,
    # zunxbt/gensyn-testnet#24, #98, headless userData wait (run_rl_swarm.sh v0.3.0-v0.7.0 lines), ENOSPC
    (["free(): double free detected in tcache 2",
      './run_rl_swarm.sh: line 221: 15150 Aborted                 (core dumped) python -m hivemind_exp.gsm8k.train_single_gpu --hf_token "$HUGGINGFACE_ACCESS_TOKEN"',
      ">> Shutting down trainer..."], Category.NATIVE_ABORT, Recovery.RESTART, "native_abort"),
    ([f'  File "{SITE}/transformers/training_args.py", line 1692, in __post_init__', "    raise ValueError(error_message)",
      "ValueError: Your setup doesn't support bf16/gpu."], Category.PRECISION_UNSUPPORTED, Recovery.STOP_AND_ALERT,
     "precision_unsupported"),
    (["ValueError: --tf32 requires Ampere or a newer GPU arch, cuda>=11 and torch>=1.7"], Category.PRECISION_UNSUPPORTED,
     Recovery.STOP_AND_ALERT, "precision_unsupported"),
    (["[rank0]: RuntimeError: !handles_.at(i) INTERNAL ASSERT FAILED at \"../c10/cuda/CUDACachingAllocator.cpp\":393, please report a bug to PyTorch."],
     Category.CUDA_INTERNAL_ASSERT, Recovery.RESTART, "cuda_internal_assert"),
    (["  fatal: unable to access 'https://github.com/learning-at-home/hivemind/': Could not resolve host: github.com",
      "  error: subprocess-exited-with-error",
      "  × git clone --filter=blob:none --quiet https://github.com/learning-at-home/hivemind /tmp/pip-install-x/hivemind did not run successfully.",
      "  │ exit code: 128"], Category.INSTALL_FAILED, Recovery.BACKOFF, "install_network"),
    (["error: subprocess-exited-with-error",
      "× git clone --filter=blob:none --quiet https://github.com/learning-at-home/hivemind /private/var/folders/T/pip-install-r/hivemind did not run successfully.",
      "│ exit code: 128"], Category.INSTALL_FAILED, Recovery.REINSTALL_DEPS, "install_subprocess"),
    (["./run_rl_swarm.sh: line 752: syntax error near unexpected token `)'",
      "./run_rl_swarm.sh: line 752: `        [Yy]* ) read -p \"Enter your Hugging Face access token: \" HUGGINGFACE_ACCESS_TOKEN;;'"],
     Category.SCRIPT_SYNTAX_ERROR, Recovery.STOP_AND_ALERT, "launcher_syntax_error"),
    (["Apr 06 13:19:21.850 [WARN] [hivemind.p2p.p2p_daemon_bindings.control.open_connection:62] zx-p2p path /tmp/hivemind-p2pd-i12aq_D1-4U.sock",
      "Failed to connect to UNIX socket at /tmp/hivemind-p2pd-i12aq_D1-4U.sock"], Category.P2PD_SOCKET_ERROR,
     Recovery.CLEANUP_THEN_RESTART, "p2pd_socket"),
    (["Started server process: 15691", ">> Waiting for modal userData.json to be created..."], Category.LOGIN_WAITING,
     Recovery.STOP_AND_ALERT, "login_waiting_userdata"),
    (["OSError: [Errno 28] No space left on device: '/root/.cache/huggingface/hub/tmp'"], Category.DISK_FULL,
     Recovery.STOP_AND_ALERT, "disk_full"),
]


@pytest.mark.parametrize("lines,category,recovery,rule_id", CASES, ids=[c[3] for c in CASES])
def test_new_categories_from_real_excerpts(clf: Classifier, lines: list[str], category: Category,
                                           recovery: Recovery, rule_id: str) -> None:
    got = clf.classify_lines(lines)
    assert (got.category, got.recovery, got.rule_id) == (category, recovery, rule_id)
    assert got.evidence and got.advice


def test_login_wait_that_ended_is_not_a_failure(clf: Classifier) -> None:
    lines = [">> Waiting for modal userData.json to be created...", "Found userData.json. Proceeding...",
             "Your ORG_ID is set to: 00000000-0000-0000-0000-000000000001"]
    assert clf.classify_lines(lines).category == Category.NONE


def test_exit_signal_decides_when_output_says_nothing(clf: Classifier) -> None:
    """A real child process killed by SIGABRT: its exit (signal 6) is read structurally → native_abort."""
    proc = subprocess.run([sys.executable, "-c", "import os; print('training step 3', flush=True); os.abort()"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == -6
    got = clf.classify_lines(proc.stdout.splitlines(), exit_code=None, signal=-proc.returncode)
    assert (got.category, got.rule_id) == (Category.NATIVE_ABORT, "struct_native_signal")
    assert clf.classify_lines(["x"], exit_code=134).rule_id == "struct_native_status"  # bash's 128 + 6


def test_stream_result_reads_the_structure_of_its_tail(clf: Classifier) -> None:
    s = StreamClassifier(clf, "E2")
    for line in BANNER_THEN_TYPEERROR:
        s.on_line(line, now=0.0)
    assert s.result().category == Category.DEPENDENCY_CONFLICT


# ---------------------------------------------------------------- recoveries through the policy


def crash(uptime: float = 30.0) -> ExitInfo:
    return ExitInfo(1, None, uptime, generation="E4")


@pytest.mark.parametrize("lines", [CASES[0][0], CASES[3][0]], ids=["native_abort", "cuda_internal_assert"])
def test_native_abort_and_internal_assert_restart_once_then_stop(clf: Classifier, lines: list[str]) -> None:
    s, h = Settings(), History()
    cls = clf.classify_lines(lines)
    first = decide(crash(), cls, h, s, T0, rand=1.0)
    second = decide(crash(), cls, h, s, T0 + 60, rand=1.0)
    assert (first.action, second.action) == ("restart", "stop")
    assert second.alert and second.reason.endswith("it happened again right after a restart")
    assert second.advice == cls.advice
    # a healthy run in between resets the count: the next abort restarts again
    decide(crash(uptime=s.healthy_uptime + 1), cls, h, s, T0 + 9000, rand=1.0)
    assert decide(crash(), cls, h, s, T0 + 9100, rand=1.0).action == "stop"  # that healthy exit was an abort too
    h2 = History()
    decide(crash(), cls, h2, s, T0, rand=1.0)
    h2.extra.pop(cls.category.value)  # as after a healthy uptime (decide pops the key)
    assert decide(crash(), cls, h2, s, T0 + 60, rand=1.0).action == "restart"


@pytest.mark.parametrize("idx", [1, 6, 8, 9], ids=["precision", "syntax", "login_waiting", "disk_full"])
def test_stop_and_tell_categories_never_restart(clf: Classifier, idx: int) -> None:
    cls = clf.classify_lines(CASES[idx][0])
    d = decide(crash(), cls, History(), Settings(), T0, rand=1.0)
    assert (d.action, d.recovery, d.alert) == ("stop", Recovery.STOP_AND_ALERT, True)
    assert d.advice == cls.advice and len(d.advice) > 60


def test_install_network_backs_off_and_conflict_reinstalls(clf: Classifier) -> None:
    s = Settings()
    net = decide(crash(), clf.classify_lines(CASES[4][0]), History(), s, T0, rand=0.0)
    assert (net.action, net.recovery, net.delay, net.reinstall) == ("restart", Recovery.BACKOFF, 180.0, False)
    conflict = ["ERROR: Cannot install trl==0.19.1 and transformers==4.51.3 because these package versions have conflicting dependencies.",
                "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/"]
    cls = clf.classify_lines(conflict)
    assert (cls.category, cls.rule_id) == (Category.DEPENDENCY_CONFLICT, "install_conflict")
    h = History()
    d1, d2 = (decide(crash(), cls, h, s, T0 + i, rand=1.0) for i in (0, 60))
    assert (d1.action, d1.reinstall, d1.reinstall_target, d2.action) == ("restart", True, "python", "stop")


def test_p2pd_socket_cleans_up_before_restarting(clf: Classifier) -> None:
    d = decide(crash(), clf.classify_lines(CASES[7][0]), History(), Settings(), T0, rand=1.0)
    assert (d.action, d.cleanup, d.recovery) == ("restart", True, Recovery.CLEANUP_THEN_RESTART)


# ---------------------------------------------------------------- gswarm diagnose shows the final exception


def test_diagnose_shows_final_exception_and_frame(tmp_path) -> None:
    import json

    import typer
    from typer.testing import CliRunner

    from gswarm.cli import diagnose

    app = typer.Typer()
    diagnose.register(app)

    log = tmp_path / "swarm.log"
    log.write_text("\n".join(BANNER_THEN_TYPEERROR) + "\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["diagnose", str(log), "--json"])
    d = json.loads(res.output)
    assert d["final_exception"] == {
        "type": "TypeError", "message": "GRPOTrainer._get_train_sampler() takes 1 positional argument but 2 were given",
        "frame": {"path": f"{SITE}/transformers/trainer.py", "line": 2245, "kind": "site-packages", "module": "transformers"}}
    assert (d["category"], d["action"]["action"], d["action"]["reinstall"]) == ("dependency_conflict", "restart", True)
    text = CliRunner().invoke(app, ["diagnose", str(log)]).output
    assert ("final exception: TypeError: GRPOTrainer._get_train_sampler() takes 1 positional argument but 2 were given"
            f"  [raised at {SITE}/transformers/trainer.py:2245 (site-packages, transformers)]") in text


def test_capture_prefixes_are_read_through() -> None:
    """docker compose ("swarm_node-1  | ", case 053) and timestamped docker logs (rl-swarm#304) prefixes."""
    compose = ["swarm_node-1  | Traceback (most recent call last):",
               'swarm_node-1  |   File "/home/gensyn/rl_swarm/hivemind_exp/trainer/hivemind_grpo_trainer.py", line 235, in train',
               "swarm_node-1  |     self.follower_train()",
               "swarm_node-1  | KeyError: 'question'"]
    exc = parse(list(enumerate(compose))).exception
    assert (exc.type, exc.message, exc.frame.module, exc.start) == ("KeyError", "'question'", "hivemind_exp", 0)
    docker = ["[rl-swarm] 2025-05-23T16:49:12.290114123Z Traceback (most recent call last):",
              '[rl-swarm] 2025-05-23T16:49:12.290129429Z   File "/app/hivemind_exp/trainer/hivemind_grpo_trainer.py", line 335, in train',
              "[rl-swarm] 2025-05-23T16:49:12.290132874Z     self._train()",
              "[rl-swarm] 2025-05-23T16:49:12.290135653Z ValueError: boom"]
    exc = parse(list(enumerate(docker))).exception
    assert (exc.type, exc.message, exc.frame.line) == ("ValueError", "boom", 335)
