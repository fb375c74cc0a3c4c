"""Tests of the shared foundation: config precedence, atomic writes, fake clock."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from gswarm.clock import FakeClock
from gswarm.config import load_settings, redacted_dict
from gswarm.errors import ConfigError
from gswarm.paths import atomic_write


def test_precedence_flags_over_env_over_file(tmp_path):
    cfg = tmp_path / "g.toml"
    cfg.write_text('[gswarm]\nmodel_size = "7"\nswarm = "B"\nstop_timeout = 12\n')
    env = {"GSWARM_MODEL_SIZE": "32", "GSWARM_CONFIG_FILE": str(cfg)}
    s = load_settings({"model_size": "72"}, env=env)
    assert s.model_size == "72"
    s = load_settings({}, env=env)
    assert s.model_size == "32" and s.swarm == "B" and s.stop_timeout == 12.0


def test_invalid_value_names_option_source_and_allowed(tmp_path):
    with pytest.raises(ConfigError) as ei:
        load_settings({}, env={"GSWARM_MODEL_SIZE": "3"})
    msg = str(ei.value)
    assert "model_size" in msg and "GSWARM_MODEL_SIZE" in msg and "'0.5'" in msg and "'72'" in msg


def test_bad_toml_names_file(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("model_size = \n")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_settings({"config_file": cfg}, env={})


def test_notify_urls_space_separated_and_secrets_redacted():
    s = load_settings({}, env={"GSWARM_NOTIFY_URLS": "tgram://123:abc/456 json://127.0.0.1:9/x", "GSWARM_HF_TOKEN": "hf_secret"})
    assert s.notify_urls == ["tgram://123:abc/456", "json://127.0.0.1:9/x"]
    red = redacted_dict(s)
    text = repr(red)
    assert "hf_secret" not in text and "abc" not in text and red["hf_token"] == "***"


def test_atomic_write_mode_and_content(tmp_path):
    p = tmp_path / "a" / "secret.json"
    atomic_write(p, "{}")
    assert p.read_text() == "{}"
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert [x.name for x in p.parent.iterdir()] == ["secret.json"]


async def test_fake_clock_wakes_sleepers_in_order():
    clock = FakeClock()
    woke: list[float] = []

    async def sleeper(d: float) -> None:
        await clock.sleep(d)
        woke.append(clock.monotonic())

    tasks = [asyncio.create_task(sleeper(d)) for d in (3.0, 1.0)]
    await asyncio.sleep(0)
    assert clock.pending_sleeps == [1.0, 3.0]
    await clock.run_for(5.0, step=1.0)
    await asyncio.gather(*tasks)
    assert woke == [1.0, 3.0]


def test_api_override_between_file_and_env(tmp_path):
    import json

    sd = tmp_path / "sd"
    sd.mkdir()
    (sd / "config_override.json").write_text(json.dumps({"model_size": "7", "stop_timeout": 9}))
    cfg = tmp_path / "g.toml"
    cfg.write_text('model_size = "1.5"\nbackoff_max = 60\n')
    s = load_settings({"config_file": cfg}, env={"GSWARM_STATE_DIR": str(sd)})
    assert (s.model_size, s.stop_timeout, s.backoff_max) == ("7", 9.0, 60.0)
    s = load_settings({"config_file": cfg, "model_size": "72"}, env={"GSWARM_STATE_DIR": str(sd), "GSWARM_STOP_TIMEOUT": "3"})
    assert (s.model_size, s.stop_timeout) == ("72", 3.0)


def test_malformed_override_names_file(tmp_path):
    sd = tmp_path / "sd"
    sd.mkdir()
    (sd / "config_override.json").write_text("{oops")
    with pytest.raises(ConfigError, match="config_override.json"):
        load_settings({}, env={"GSWARM_STATE_DIR": str(sd)})


@pytest.mark.parametrize("content, needle", [
    (None, "is a folder"),
    (b'swarm = "\xff\xfe"\n', "not UTF-8"),
])
def test_config_file_errors_are_one_clear_line(tmp_path, content, needle):
    path = tmp_path if content is None else tmp_path / "b.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=needle):
        load_settings({"config_file": path}, env={})


def test_bom_and_top_level_keys_next_to_gswarm_table(tmp_path):
    cfg = tmp_path / "g.toml"
    cfg.write_bytes('\ufeffbackoff_initial = 7\n[gswarm]\nswarm = "B"\n'.encode("utf-8"))
    s = load_settings({"config_file": cfg}, env={})
    assert (s.backoff_initial, s.swarm) == (7.0, "B")
    cfg.write_text('backoff_initial = "abc"\n[gswarm]\nswarm = "B"\n')
    with pytest.raises(ConfigError, match="backoff_initial"):
        load_settings({"config_file": cfg}, env={})


def test_env_json_options_and_empty_values():
    s = load_settings({}, env={"GSWARM_EXTRA_ENV": '{"A": "1"}', "GSWARM_HARDWARE": ""})
    assert s.extra_env == {"A": "1"} and s.hardware == "auto"
    with pytest.raises(ConfigError, match="GSWARM_EXTRA_ENV"):
        load_settings({}, env={"GSWARM_EXTRA_ENV": "notjson"})


def test_notification_schedule_validated_early():
    with pytest.raises(ConfigError, match="notify_digest"):
        load_settings({}, env={"GSWARM_NOTIFY_DIGEST": "sometimes"})
    with pytest.raises(ConfigError, match="quiet_hours"):
        load_settings({}, env={"GSWARM_QUIET_HOURS": "late"})
    s = load_settings({}, env={"GSWARM_NOTIFY_DIGEST": "weekly mon 08:30", "GSWARM_QUIET_HOURS": "22:00-07:00"})
    assert (s.notify_digest, s.quiet_hours) == ("weekly mon 08:30", "22:00-07:00")


def test_channel_urls_in_tables_are_redacted_too(tmp_path):
    cfg = tmp_path / "g.toml"
    cfg.write_text('[[notify_channels]]\nurl = "tgram://123456:SECRETTOKEN/987"\ntags = ["ops"]\n')
    red = redacted_dict(load_settings({"config_file": cfg}, env={}))
    assert red["notify_channels"] == [{"url": "tgram://***/***", "tags": ["ops"]}]
