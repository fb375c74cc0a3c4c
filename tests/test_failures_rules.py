"""The rule table as data: validation errors, benign lines, our own realistic variants, the stream path."""

from __future__ import annotations

from pathlib import Path

import pytest

from gswarm.errors import ConfigError
from gswarm.events import Category, Recovery
from gswarm.logs.classify import RULES_FILE, Classifier, StreamClassifier

GENRL = "[2025-07-27 08:05:06,285][genrl.logging_utils.global_defs][INFO] - "
GENRL_ERR = "[2025-07-27 08:05:06,285][genrl.logging_utils.global_defs][ERROR] - "
HEALTHY_E4 = [
    GENRL + "🐱 Hello 🐈 [quick fuzzy otter] 🦮 [QmUserPeer000000000000000000000000000000000001]!",
    GENRL + "Peer ID [QmUserPeer000000000000000000000000000000000001] is already registered! Continuing.",
    GENRL + "Starting round: 13144/1000000.",
    GENRL + "🐝 Joining round: 13144",
    "Map: 100%|██████████████████████████| 2/2 [00:00<00:00, 204.69 examples/s]",
    GENRL + "Already finished round: 13144. Next check in 5.0s.",
    GENRL + "🐝 Joining round: 13145",
    GENRL + "Starting round: 13145/1000000.",
]


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier.from_package()


def write_rules(tmp_path: Path, rule: str) -> Path:
    p = tmp_path / "rules.toml"
    p.write_text('version = 1\n[prefilter]\ngate = ["rror"]\n\n[[rule]]\n' + rule, encoding="utf-8")
    return p


GOOD = 'id = "x"\ncategory = "unknown_crash"\nrecovery = "restart"\nseverity = "error"\nany = ["Error: boom"]\nadvice = "do it"\n'


def test_from_file_accepts_a_minimal_table(tmp_path: Path) -> None:
    c = Classifier.from_file(write_rules(tmp_path, GOOD))
    got = c.classify_lines(["ok", "Error: boom"])
    assert (got.category, got.recovery, got.rule_id, got.evidence) == (Category.UNKNOWN_CRASH, Recovery.RESTART, "x", ("Error: boom",))


@pytest.mark.parametrize("change, field", [
    (('category = "unknown_crash"', 'category = "nope"'), "category"),
    (('recovery = "restart"', 'recovery = "retry"'), "recovery"),
    (('severity = "error"', 'severity = "loud"'), "severity"),
    (('any = ["Error: boom"]', 'any = ["re:Error: (boom"]'), "any"),
    (('any = ["Error: boom"]', 'any = ["no gate word here"]'), "any"),
    (('any = ["Error: boom"]', 'any = []'), "any"),
    (('advice = "do it"', 'advice = ""'), "advice"),
    (('id = "x"', 'id = "x"\ncolour = "red"'), "colour"),
    (('id = "x"', 'id = "x"\nwindow = -1'), "window"),
    (('id = "x"', 'id = "x"\ngenerations = ["E9"]'), "generations"),
])
def test_invalid_rule_names_rule_and_field(tmp_path: Path, change: tuple[str, str], field: str) -> None:
    path = write_rules(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as exc:
        Classifier.from_file(path)
    msg = str(exc.value)
    assert str(path) in msg and "'x'" in msg and f"'{field}'" in msg


def test_missing_and_broken_rule_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Classifier.from_file(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rule]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Classifier.from_file(bad)


def test_package_rules_cover_the_corpus_categories() -> None:
    cats = {r.category for r in Classifier.from_file(RULES_FILE).rules}
    index = (Path(__file__).parent / "data" / "failures" / "INDEX.md").read_text(encoding="utf-8")
    for line in index.splitlines():
        if line.startswith("### "):
            assert Category(line[4:].strip()) in cats
    assert {Category.IDENTITY_TAKEN, Category.TRAINER_ERROR_SWALLOWED, Category.GAME_EXCEPTION_EXIT_ZERO} <= cats


@pytest.mark.parametrize("lines", [
    HEALTHY_E4,
    ["ERROR: pip's dependency resolver does not currently take into account all the packages that are installed."],
    ["./run_rl_swarm.sh: line 61: kill: (-3664) - No such process"],
    [GENRL + "Already finished round: 30511. Next check in 5.0s.", GENRL + "🐝 Joining round: 30512"],
    ["Jul 28 22:09:27.108 [INFO] Checking that identity from `/home/user/rl-swarm/swarm.pem` is not used by other peers"],
])
def test_benign_lines_are_never_failures(clf: Classifier, lines: list[str]) -> None:
    got = clf.classify_lines(lines)
    assert got.recovery in (Recovery.NONE, Recovery.WAIT)
    assert got.category in (Category.NONE, Category.BENIGN_DEPENDENCY_WARNING)


VARIANTS = [  # (lines, category, recovery, rule_id) - realistic texts not in the corpus
    (["Jul 28 22:09:27.108 [INFO] Checking that identity from `/root/rl-swarm/swarm.pem` is not used by other peers",
      "Error executing job with overrides: []", "Traceback (most recent call last):",
      "hivemind.p2p.p2p_daemon_bindings.utils.P2PDaemonError: Identity from `/root/rl-swarm/swarm.pem` is already taken by another peer"],
     Category.IDENTITY_TAKEN, Recovery.CLEANUP_THEN_RESTART, "identity_taken"),
    ([GENRL_ERR + "Error occurred during training, continuing...", "Traceback (most recent call last):",
      "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.02 GiB. GPU 0 has a total capacity of 7.63 GiB"],
     Category.CUDA_OOM, Recovery.REDUCE_MODEL, "cuda_oom"),
    (["2025-05-21 10:00:01,234 - ERROR - hivemind_exp.trainer.hivemind_grpo_trainer:quick fuzzy otter:188 - Exception during training",
      "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 512.00 MiB."],
     Category.CUDA_OOM, Recovery.REDUCE_MODEL, "cuda_oom"),
    (["requests.exceptions.HTTPError: 500 Server Error: Internal Server Error for url: http://localhost:3000/api/register-peer"],
     Category.CHAIN_REGISTER_PEER_FAILED, Recovery.RESTART, "chain_register_peer_failed"),
    (["Error executing job with overrides: []",
      "hydra.errors.InstantiationException: Error in call to target 'genrl.communication.hivemind.hivemind_backend.HivemindBackend':",
      "P2PDaemonError('Daemon failed to start in 120.0 seconds')"],
     Category.DHT_DAEMON_TIMEOUT, Recovery.CLEANUP_THEN_RESTART, "dht_daemon_timeout"),
    (["OSError: Qwen/Qwen3-0.6B is not a local folder and is not a valid model identifier listed on 'https://huggingface.co/models'"],
     Category.HF_DOWNLOAD_ERROR, Recovery.BACKOFF, "hf_hub_unavailable"),
    ([GENRL_ERR + "Error pulling model from ollama: qwen2.5-coder:1.5b-instruct"],
     Category.OLLAMA_ERROR, Recovery.STOP_AND_ALERT, "ollama_error"),
    (["./run_rl_swarm.sh: line 287: hf: command not found", ">> An error was detected while running rl-swarm. See /root/rl-swarm/logs for full logs."],
     Category.MISSING_BINARY, Recovery.STOP_AND_ALERT, "missing_command"),
    (["ModuleNotFoundError: No module named 'reasoning_gym'"], Category.DEPENDENCY_CONFLICT, Recovery.REINSTALL_DEPS,
     "struct_module_missing"),  # #17: read as the final exception (was the line rule module_missing; same cause and recovery)
    (["UserWarning: NVIDIA GeForce RTX 5090 with CUDA capability sm_120 is not compatible with the current PyTorch installation."],
     Category.GPU_ARCH_UNSUPPORTED, Recovery.STOP_AND_ALERT, "gpu_arch_unsupported"),
    (["zsh: killed     python -m rgym_exp.runner.swarm_launcher --config-path /x --config-name rg-swarm.yaml"],
     Category.SYSTEM_OOM_KILLED, Recovery.REDUCE_MODEL, "system_oom_shell_killed"),
    (["Traceback (most recent call last):", '  File "x.py", line 1, in <module>', "ValueError: expected sequence of length 2 at dim 1 (got 1)"],
     Category.UNKNOWN_CRASH, Recovery.RESTART, "struct_unknown_exception"),  # #17: the structural fallback (was exception_line), its advice names the exception and frame
    ([GENRL_ERR + "Exception occurred during game run.", "Traceback (most recent call last):",
      "ValueError: expected sequence of length 2 at dim 1 (got 1)"],
     Category.GAME_EXCEPTION_EXIT_ZERO, Recovery.RESTART, "game_exception"),
    ([GENRL_ERR + "Failed to submit to chain.", "This is most likely transient and will recover.",
      "requests.exceptions.HTTPError: 502 Server Error: Bad Gateway for url: http://localhost:3000/api/submit-reward"],
     Category.CHAIN_SUBMIT_REJECTED, Recovery.BACKOFF, "chain_submit_upstream"),
    # last decisive failure wins: an old survived rejection, then the real crash
    ([GENRL_ERR + "Failed to submit to chain.", "This is most likely transient and will recover.",
      "RuntimeError: DHTNode bootstrap failed: none of the initial_peers responded to a ping. (set ensure_bootstrap_success=False to ignore)"],
     Category.DHT_BOOTSTRAP_PING_FAILED, Recovery.BACKOFF, "dht_bootstrap_ping_failed"),
    ([">> An error was detected while running rl-swarm. See /root/rl-swarm/logs for full logs.", ">> Shutting down trainer..."],
     Category.WRAPPER_ONLY_ERROR, Recovery.RESTART, "script_error_banner"),
    (["RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 7.79 GiB total capacity; 6.1 GiB already allocated)"],
     Category.CUDA_OOM, Recovery.REDUCE_MODEL, "cuda_oom"),
    (["Map: 100%|██████████| 74/74 [00:00<00:00, 1244.69 examples/s]", "Killed"],
     Category.SYSTEM_OOM_KILLED, Recovery.REDUCE_MODEL, "system_oom_shell_killed"),
    (["TypeError: GRPOConfig.__init__() got an unexpected keyword argument 'vllm_mode'"],
     Category.DEPENDENCY_CONFLICT, Recovery.REINSTALL_DEPS, "import_mismatch"),
    (["requests.exceptions.ConnectionError: (MaxRetryError(\"HTTPSConnectionPool(host='huggingface.co', port=443): Max retries exceeded"],
     Category.HF_DOWNLOAD_ERROR, Recovery.BACKOFF, "hf_hub_unavailable"),
    (['  File "/home/user/.venv/lib/python3.11/site-packages/ollama/_client.py", line 120, in _request_raw',
      "httpx.ConnectError: [Errno 111] Connection refused"],
     Category.OLLAMA_ERROR, Recovery.STOP_AND_ALERT, "ollama_unreachable"),
    (["swarm-gpu-1 exited with code 137"], Category.SYSTEM_OOM_KILLED, Recovery.REDUCE_MODEL, "container_exit_137"),
    (["[123.4] Memory cgroup out of memory: Killed process 4242 (python) total-vm:9000kB"],
     Category.SYSTEM_OOM_KILLED, Recovery.REDUCE_MODEL, "system_oom_kernel"),
    (["DEBUG:hivemind_exp.trainer.hivemind_grpo_trainer:Unknown error calling submit-winner endpoint! Continuing."],
     Category.CHAIN_SUBMIT_REJECTED, Recovery.BACKOFF, "chain_submit_upstream"),
    (["requests.exceptions.ConnectionError: HTTPSConnectionPool(host='gensyn-testnet.g.alchemy.com', port=443): Max retries"],
     Category.CHAIN_RPC_UNREACHABLE, Recovery.BACKOFF, "chain_rpc_unreachable"),
    (["swarm_node-1  |   File \"/home/gensyn/rl_swarm/hivemind_exp/trainer/hivemind_grpo_trainer.py\", line 151, in train_stages",
      "swarm_node-1  |     assert prev_outputs", "swarm_node-1  | AssertionError"],
     Category.TRAINER_BUG_SWARM_STATE, Recovery.RESTART, "swarm_state_assertion"),
    (["wandb: You can sync this run to the cloud by running:", "wandb: wandb sync logs/wandb/offline-run-20250601_101010-abc"],
     Category.HANG_NO_PROGRESS, Recovery.WAIT, "wandb_summary_then_silence"),
    (["INFO:hivemind_exp.trainer.hivemind_grpo_trainer:Already finished round: 24. Next check in 5.0s."] * 3,
     Category.HANG_NO_PROGRESS, Recovery.WAIT, "already_finished_round_loop"),
]


@pytest.mark.parametrize("lines, category, recovery, rule_id", VARIANTS, ids=[v[3] + f"-{i}" for i, v in enumerate(VARIANTS)])
def test_own_variants(clf: Classifier, lines: list[str], category: Category, recovery: Recovery, rule_id: str) -> None:
    got = clf.classify_lines(lines)
    assert (got.category, got.recovery, got.rule_id) == (category, recovery, rule_id)
    stream = clf.stream()
    for line in lines:
        stream.on_line(line, now=0.0)
    if next(r for r in clf.rules if r.id == rule_id).stream:
        assert (stream.result().category, stream.result().rule_id) == (category, rule_id)
    else:  # docker/kernel/progress-only rules are for `gswarm diagnose`; the live path leaves them to health
        assert stream.result().rule_id != rule_id


def test_exit_status_refines_the_classification(clf: Classifier) -> None:
    sig = clf.classify_lines(HEALTHY_E4, "E4", exit_code=None, signal=9)
    assert (sig.category, sig.recovery, sig.rule_id) == (Category.SYSTEM_OOM_KILLED, Recovery.REDUCE_MODEL, "exit.sigkill")
    clean = clf.classify_lines(HEALTHY_E4, "E4", exit_code=0, signal=None)
    assert (clean.category, clean.recovery) == (Category.CLEAN_EXIT, Recovery.RESTART)
    oom = clf.classify_lines(["torch.OutOfMemoryError: CUDA out of memory."], "E4", exit_code=None, signal=9)
    assert oom.category == Category.CUDA_OOM


def test_generation_filter(clf: Classifier) -> None:
    line = [GENRL_ERR + "Exception occurred during game run."]
    assert clf.classify_lines(line, "E4").category == Category.GAME_EXCEPTION_EXIT_ZERO
    assert clf.classify_lines(line, "E1").category == Category.NONE


def test_stream_live_incidents(clf: Classifier) -> None:
    s = StreamClassifier(clf, "E6")
    swallowed = GENRL_ERR + "Error occurred during training, continuing..."
    out = [s.on_line(swallowed, now=t) for t in (0.0, 600.0, 1200.0, 1800.0)]
    assert out == [None, None, None, None]
    out = s.on_line(swallowed, now=1900.0)  # 5 within 30 min (the first is now 1900 s old: dropped) -> not yet
    assert out is None
    got = s.on_line(swallowed, now=2000.0)
    assert got is not None and (got.category, got.recovery) == (Category.TRAINER_ERROR_SWALLOWED, Recovery.RESTART)
    keys = StreamClassifier(clf, "E4")
    results = [keys.on_line("Waiting for API key to be activated...") for _ in range(60)]
    assert results[:59] == [None] * 59 and results[59].category == Category.API_KEY_PENDING


def test_stream_result_only_looks_at_the_tail(clf: Classifier) -> None:
    s = StreamClassifier(clf, "E4", tail=100)
    s.on_line("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert s.result().category == Category.CUDA_OOM
    for i in range(150):
        s.on_line(GENRL + f"Starting round: {i}/1000000.")
    assert s.result().category == Category.NONE
    assert s.lines_seen == 151


def test_stream_matches_batch_on_the_corpus(clf: Classifier) -> None:
    for path in sorted((Path(__file__).parent / "data" / "failures").glob("*.txt")):
        log = path.read_text(encoding="utf-8", errors="replace").partition("\n---\n")[2].splitlines()
        s = clf.stream()
        for line in log:
            s.on_line(line, now=0.0)
        batch = clf.classify_lines(log)
        stream_rules = {r.id for r in clf.rules if r.stream}
        if batch.rule_id in stream_rules:
            assert s.result().rule_id == batch.rule_id, path.name
        else:  # progress-based benign rules are left to the health monitor on the live path
            assert s.result().category == Category.NONE, path.name
