"""Profiles, the five configuration layers, unknown GSWARM_* variables and the duration grammar.

The CLI runs in-process through ``gswarm.cli.main`` (exit codes and messages as the operator sees them) on
real state directories; nothing touches the real ``~/.local/state``.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from gswarm.cli import main
from gswarm.config import load_settings, profiles
from gswarm.config.durations import parse_duration, parse_moment, span_seconds
from gswarm.config.settings import option_sources
from gswarm.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith("GSWARM_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # a default state dir would land here, never in ~


def gs(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``gswarm ARGS`` in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        main(list(args))
        rc = 0
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return rc, out, err


def test_round_trip_save_export_import_diff_is_empty(capsys, tmp_path, monkeypatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("GSWARM_HF_TOKEN", "hf_REALSECRET123")
    rc, out, err = gs(capsys, "profile", "save", "box", "--state-dir", str(a), "--template", "gpu-24gb",
                      "--set", "stall_timeout=1h30m", "--set", "hf_token=env:GSWARM_HF_TOKEN",
                      "--set", 'extra_env={ "OMP_NUM_THREADS" = "8", "HF_TOKEN" = "env:GSWARM_HF_TOKEN" }',
                      "-d", "my 4090")
    assert rc == 0, err
    stored = a / "profiles" / "box.toml"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600  # holds a secret reference
    exported = tmp_path / "box-export.toml"
    assert gs(capsys, "profile", "export", "box", "--state-dir", str(a), "-o", str(exported))[0] == 0
    text = exported.read_text()
    assert "hf_REALSECRET123" not in text and 'hf_token = "env:GSWARM_HF_TOKEN"' in text
    rc, out, err = gs(capsys, "profile", "import", str(exported), "--name", "box", "--state-dir", str(b))
    assert rc == 0, err
    rc, out, _ = gs(capsys, "profile", "diff", "box", str(stored), "--state-dir", str(b))
    assert (rc, out.strip()) == (0, f"no differences between box and {stored}")
    rc, out, _ = gs(capsys, "profile", "diff", "box", "gpu-24gb", "--state-dir", str(b), "--json")
    assert json.loads(out) == [
        {"option": "extra_env", "box": {"HF_TOKEN": "env:GSWARM_HF_TOKEN", "OMP_NUM_THREADS": "8"}, "gpu-24gb": None},
        {"option": "hf_token", "box": "env:GSWARM_HF_TOKEN", "gpu-24gb": None},
        {"option": "stall_timeout", "box": 5400.0, "gpu-24gb": None}]
    # the imported profile drives the configuration, its reference resolved from the environment
    s = load_settings({"state_dir": str(b), "profile": "box"})
    assert (s.model_name, s.stall_timeout, s.hf_token.get_secret_value()) == ("Gensyn/Qwen2.5-1.5B-Instruct", 5400.0, "hf_REALSECRET123")
    assert s.extra_env == {"OMP_NUM_THREADS": "8", "HF_TOKEN": "hf_REALSECRET123"}
    assert option_sources(s)["model_name"] == "profile box"


def test_precedence_of_all_five_layers(tmp_path) -> None:
    sd = tmp_path / "state"
    (sd / "profiles").mkdir(parents=True)
    names = ("backoff_initial", "backoff_max", "crash_loop_max", "sample_interval", "stop_timeout")
    (sd / "profiles" / "p.toml").write_text("[options]\nbackoff_initial = 1\nbackoff_max = 2\ncrash_loop_max = 3\n"
                                            "sample_interval = 4\nstop_timeout = 5\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text("backoff_max = 20\ncrash_loop_max = 30\nsample_interval = 40\nstop_timeout = 50\n")
    (sd / "config_override.json").write_text(json.dumps({"crash_loop_max": 300, "sample_interval": 400, "stop_timeout": 500}))
    env = {"GSWARM_SAMPLE_INTERVAL": "4000", "GSWARM_STOP_TIMEOUT": "5000", "GSWARM_PROFILE": "p"}
    s = load_settings({"state_dir": str(sd), "config_file": str(cfg), "stop_timeout": "50000"}, env=env)
    assert [getattr(s, n) for n in names] == [1, 20, 300, 4000, 50000]
    src = option_sources(s)
    assert [src[n] for n in names] == ["profile p", f"file {cfg}", "api override config_override.json",
                                       "GSWARM_SAMPLE_INTERVAL", "--stop-timeout"]
    assert (src["profile"], src["node_name"]) == ("GSWARM_PROFILE", "default")
    # without --profile / GSWARM_PROFILE the profile chosen with `gswarm profile use` applies
    (sd / "profiles" / "active").write_text("p\n")
    s = load_settings({"state_dir": str(sd)}, env={})
    assert (s.backoff_initial, s.profile, option_sources(s)["backoff_initial"]) == (1, "p", "profile p")
    (sd / "profiles" / "p.toml").unlink()  # removed by hand: say how to stop using it
    with pytest.raises(ConfigError, match=r"profile p does not exist .* \(it is the default profile; `gswarm profile use "
                                          r"--none` stops using it\)$"):
        load_settings({"state_dir": str(sd)}, env={})


def test_profile_errors_name_the_option_and_the_profile(capsys, tmp_path) -> None:
    sd = tmp_path / "s"
    (sd / "profiles").mkdir(parents=True)
    bad = sd / "profiles" / "gpu.toml"
    bad.write_text('[options]\nbackoff_max = -5\nswarm = "C"\n')
    with pytest.raises(ConfigError) as exc:
        load_settings({"state_dir": str(sd), "profile": "gpu"}, env={})
    assert str(exc.value) == (f"invalid profile gpu ({bad}):\n"
                              f"  option swarm (from profile gpu ({bad})): invalid value 'C'; input should be 'A' or 'B'\n"
                              f"  option backoff_max (from profile gpu ({bad})): Input should be greater than 0")
    rc, _, err = gs(capsys, "profile", "save", "x", "--state-dir", str(sd), "--set", "hf_token=hf_abcdef")
    assert rc == 2 and "option hf_token (from profile x): a profile may not hold a secret" in err
    rc, _, err = gs(capsys, "profile", "save", "x", "--state-dir", str(sd), "--set", "notify_urls=[\"tgram://123:abc/42\"]")
    assert rc == 2 and "option notify_urls[0] (from profile x): a profile may not hold a secret" in err
    rc, _, err = gs(capsys, "profile", "save", "x", "--state-dir", str(sd), "--set", "notify_urls=json://localhost")
    assert rc == 0, err  # a URL without credentials is no secret
    rc, _, err = gs(capsys, "profile", "save", "x", "--force", "--state-dir", str(sd), "--set", "notify_urls=tgram://1:abc/2")
    assert rc == 2 and "option notify_urls (from profile x): a profile may not hold a secret" in err
    rc, _, err = gs(capsys, "profile", "save", "y", "--state-dir", str(sd), "--set", "backof_max=3")
    assert rc == 2 and "option backof_max (from profile y): unknown option" in err
    rc, _, err = gs(capsys, "run", "--profile", "nope", "--state-dir", str(sd))
    assert rc == 2 and "profile nope does not exist" in err and "(stored: gpu, x)" in err
    leaked = tmp_path / "leaked.toml"
    leaked.write_text('[options]\nhf_token = "hf_literal"\n')
    rc, _, err = gs(capsys, "profile", "import", str(leaked), "--state-dir", str(sd))
    assert rc == 2 and f"option hf_token (from profile leaked ({leaked})): a profile may not hold a secret" in err
    secret = tmp_path / "hf.txt"
    secret.write_text("hf_from_file\n")
    bad.write_text(f'[options]\nhf_token = "file:{secret}"\n')
    assert load_settings({"state_dir": str(sd), "profile": "gpu"}, env={}).hf_token.get_secret_value() == "hf_from_file"
    with pytest.raises(ConfigError, match="reference 'env:MY_TOKEN' needs the environment variable MY_TOKEN"):
        bad.write_text('[options]\nhf_token = "env:MY_TOKEN"\n')
        load_settings({"state_dir": str(sd), "profile": "gpu"}, env={})


def test_validate_against_the_generation(capsys, tmp_path) -> None:
    sd = tmp_path / "s"
    assert gs(capsys, "profile", "save", "e2", "--state-dir", str(sd), "--set", "model_size=7",
              "--set", "model_name=Qwen/Qwen3-0.6B")[0] == 0
    rc, out, err = gs(capsys, "profile", "validate", "e2", "--state-dir", str(sd), "--generation", "E2")
    assert rc == 1 and err.startswith("warning: --model-name means nothing for E2 and is ignored (used by E3, E4, E5, E6")
    assert "(profile e2)" in err
    rc, out, err = gs(capsys, "profile", "validate", "e2", "--state-dir", str(sd), "-g", "E4")
    assert rc == 1 and "--model-size means nothing for E4" in err
    rc, out, err = gs(capsys, "profile", "validate", "gpu-24gb", "--state-dir", str(sd), "-g", "E5")
    assert (rc, out.strip(), err) == (0, "profile gpu-24gb: valid for E5", "")


def test_unknown_gswarm_variable_is_reported_like_an_unknown_toml_key() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings({}, env={"GSWARM_BACKOF_MAX": "3", "GSWARM_STALL_TIMEOUT": "60"})
    assert str(exc.value) == ("environment variable GSWARM_BACKOF_MAX is not a GSwarm option; unset it or fix its "
                              "name (`gswarm options` lists every GSWARM_* variable)")
    # GSwarm's own markers and the emulator's knobs are not options, and not errors
    s = load_settings({}, env={"GSWARM_RUN_MARKER": "x", "GSWARM_EMU_PACE": "0.1", "GSWARM_STALL_TIMEOUT": "2h"})
    assert s.stall_timeout == 7200.0


@pytest.mark.parametrize("text,seconds", [("90", 90), ("90s", 90), ("30m", 1800), ("1h30m", 5400), ("2d", 172800),
                                          ("1w", 604800), ("1.5h", 5400), ("1d12h", 129600), (" 2 h ", 7200)])
def test_duration_grammar(text, seconds) -> None:
    assert parse_duration(text, "x") == seconds


def test_duration_grammar_refuses_the_rest() -> None:
    for bad in ("", "soon", "30m1h", "1h1h", "5m junk", "-3", "1y"):
        assert span_seconds(bad) is None, bad
    with pytest.raises(ConfigError, match=r"^option --x: '0m' must be longer than zero"):
        parse_duration("0m", "option --x")
    with pytest.raises(ConfigError) as exc:
        load_settings({"backoff_max": "1h1h"}, env={})
    assert "option backoff_max (from --backoff-max): '1h1h' is not a duration; use seconds or e.g. 90s, 30m, 1h30m, 2d" in str(exc.value)
    assert parse_moment("2026-01-02T03:04:05Z", "--since", 0) == 1767323045.0
    assert parse_moment("1h30m", "--since", 10000.0) == 4600.0
    from gswarm.logs._jsonread import parse_time  # gswarm logs --since/--until: the same grammar

    assert (parse_time("1h30m", 10000.0), parse_time("2d", 200000.0)) == (4600.0, 27200.0)


def test_moments_where_a_moment_is_meant(capsys, tmp_path) -> None:
    from datetime import datetime, timedelta

    from gswarm import maintenance
    from gswarm.config.durations import parse_until

    assert parse_until("1h30m", "x", 1000.0) == 6400.0
    assert parse_until("2026-01-02T03:04:05Z", "x", 0) == 1767323045.0
    with pytest.raises(ConfigError, match=r"^x: '2020-01-01T00:00Z' is not in the future"):
        parse_until("2020-01-01T00:00Z", "x", 1767323045.0)
    sd = tmp_path / "s"
    end = (datetime.now() + timedelta(hours=3)).replace(microsecond=0)
    rc, out, err = gs(capsys, "maintenance", end.isoformat(), "--state-dir", str(sd))
    assert rc == 0, err
    assert maintenance.active_until(sd, end.timestamp() - 60) == end.timestamp()
    rc, out, err = gs(capsys, "maintenance", "1h30m", "--state-dir", str(sd))
    assert rc == 0 and ("(1 h 30 min left)" in out or "(1 h 29 min left)" in out), out
    rc, _, err = gs(capsys, "report", "--since", (datetime.now() + timedelta(hours=1)).isoformat(), "--state-dir", str(sd))
    assert rc == 2 and "must reach back from now" in err


def test_plan_takes_a_profile(capsys, tmp_path) -> None:
    from gswarm.emulator.checkout import init_checkout

    co, sd = init_checkout(tmp_path / "co", "E4"), tmp_path / "s"
    assert gs(capsys, "profile", "save", "small", "--state-dir", str(sd), "--template", "gpu-8-12gb")[0] == 0
    rc, out, err = gs(capsys, "plan", "--rl-swarm-dir", str(co), "--state-dir", str(sd), "--profile", "small", "--json")
    assert rc == 0, err
    assert json.loads(out)["env"]["MODEL_NAME"] == "Gensyn/Qwen2.5-0.5B-Instruct"


def test_save_from_current_takes_file_override_and_env_with_secrets_as_references(capsys, tmp_path, monkeypatch) -> None:
    sd, cfg = tmp_path / "s", tmp_path / "c.toml"
    cfg.write_text('node_name = "rig1"\napi_token = "file-secret-token"\n')
    sd.mkdir()
    (sd / "config_override.json").write_text('{"backoff_max": 120}')
    monkeypatch.setenv("GSWARM_HF_TOKEN", "hf_REALSECRET123")
    monkeypatch.setenv("GSWARM_STALL_TIMEOUT", "2h")
    rc, _, err = gs(capsys, "profile", "save", "now", "--from-current", "--state-dir", str(sd), "--config-file", str(cfg),
                    "--set", "crash_loop_max=9")
    assert rc == 0, err
    assert "note: api_token (from file " in err and "was not saved" in err
    text = (sd / "profiles" / "now.toml").read_text()
    assert "hf_REALSECRET123" not in text and "file-secret-token" not in text
    assert profiles.read(sd, "now").options == {"backoff_max": 120.0, "crash_loop_max": 9, "hf_token": "env:GSWARM_HF_TOKEN",
                                                 "node_name": "rig1", "stall_timeout": 7200.0}


def test_init_for_an_e2_checkout_asks_the_swarm_not_the_model(capsys, tmp_path) -> None:
    from gswarm.emulator.checkout import init_checkout

    co, sd = init_checkout(tmp_path / "co", "E2"), tmp_path / "s"
    rc, _, err = gs(capsys, "init", "--yes", "--rl-swarm-dir", str(co), "--swarm", "C", "--state-dir", str(sd))
    assert rc == 2 and "option --swarm: 'C' is not A or B" in err
    rc, out, err = gs(capsys, "init", "--yes", "--rl-swarm-dir", str(co), "--swarm", "b", "--template", "gpu-24gb",
                      "--name", "e2", "--no-use", "--state-dir", str(sd))
    assert rc == 0, err
    assert f"checkout: {co} (generation E2)" in out and out.strip().endswith(f"next: gswarm run --state-dir {sd} --profile e2")
    assert profiles.read(sd, "e2").options == {"hardware": "gpu", "rl_swarm_dir": str(co), "swarm": "B"}
    assert profiles.active(sd) is None
    rc, out, err = gs(capsys, "profile", "validate", "e2", "--rl-swarm-dir", str(co), "--state-dir", str(sd))
    assert (rc, out.strip(), err) == (0, "profile e2: valid for E2", "")  # claims the checkout's generation
