"""What a newcomer met in init / profile / service / login (follow-up of issues #14/#16): each case runs the
real CLI in-process (``gswarm.cli.main`` with its error mapping) on real folders, profiles and emulated
checkouts, and checks the exact exit code and message."""

from __future__ import annotations

from pathlib import Path

import pytest

from gswarm.config import load_settings, profiles
from gswarm.emulator.checkout import init_checkout
from gswarm.errors import ConfigError
from tests.helpers import run_cli


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean HOME/XDG and no GSWARM_* from the caller's environment."""
    import os

    for key in [k for k in os.environ if k.startswith("GSWARM_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path


# --- 1. init in a folder that is not a checkout; a bad option from a profile names the profile

def test_init_yes_outside_a_checkout_refuses(home: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    plain = home / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    sd = home / "st"
    code, out = run_cli(capsys, "init", "--yes", "--state-dir", str(sd))
    assert code == 2
    assert (f"error: the current folder {plain} (the default of --rl-swarm-dir) is not an RL Swarm checkout (no "
            "run_rl_swarm.sh and none of code_gen_exp/, rgym_exp/, hivemind_exp/gsm8k/); pass --rl-swarm-dir with your "
            "clone of gensyn-ai/rl-swarm or cd into it and run gswarm init again (--not-a-checkout saves this folder "
            "anyway, e.g. before cloning into it)") in out
    assert not (sd / "profiles").exists() and "next:" not in out
    code, out = run_cli(capsys, "init", "--yes", "--state-dir", str(sd), "--rl-swarm-dir", str(plain))
    assert code == 2 and f"error: option --rl-swarm-dir: {plain} is not an RL Swarm checkout" in out
    # the explicit flag saves it anyway (e.g. before cloning)
    code, out = run_cli(capsys, "init", "--yes", "--state-dir", str(sd), "--name", "s", "--not-a-checkout", "--no-use")
    assert code == 0, out
    assert profiles.read(sd, "s").options["rl_swarm_dir"] == str(plain)


def test_a_bad_checkout_from_a_profile_names_the_profile(home: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    plain = home / "plain"
    plain.mkdir()
    sd = home / "st"
    profiles.write(sd, profiles.Profile("s", {"rl_swarm_dir": str(plain)}))
    monkeypatch.chdir(home)
    code, out = run_cli(capsys, "plan", "--state-dir", str(sd), "--profile", "s")
    assert code == 2
    assert out.strip().startswith(f"error: option rl_swarm_dir (from profile s): {plain} is not an RL Swarm checkout")
    assert out.strip().endswith("; or correct it in profile s")


def test_run_preparation_names_the_profile_too(home: Path) -> None:
    import asyncio

    from gswarm.errors import CheckoutError
    from gswarm.rlswarm.login import prepare_node

    plain = home / "plain"
    plain.mkdir()
    sd = home / "st"
    profiles.write(sd, profiles.Profile("s", {"rl_swarm_dir": str(plain)}))
    settings = load_settings({"state_dir": sd, "profile": "s"}, env={})
    with pytest.raises(CheckoutError) as exc:
        asyncio.run(prepare_node(settings, None, state_dir=sd))
    assert str(exc.value).startswith(f"option rl_swarm_dir (from profile s): {plain} is not an RL Swarm checkout")


# --- 2. every init answer is validated like gswarm run / profile validate

@pytest.mark.parametrize("args, message", [
    (("--swarm", "C"), "error: option --swarm: 'C' is not A or B"),
    (("--model-name", "not a model!!"), "error: option --model-name: 'not a model!!' is not a Hugging Face model id "
                                        "like Gensyn/Qwen2.5-0.5B-Instruct (letters, digits, '-', '_', '.'; one '/'), "
                                        "or '-' for the launcher's own pick"),
    (("--swarm", "B"), "error: option --swarm: the checkout {co} is generation E4; only E2 has swarms A/B; drop --swarm"),
])
def test_init_validates_every_answer(home: Path, capsys, args, message) -> None:  # type: ignore[no-untyped-def]
    co = init_checkout(home / "rl", "E4")
    sd = home / "st"
    code, out = run_cli(capsys, "init", "--yes", "--state-dir", str(sd), "--name", "s", "--rl-swarm-dir", str(co), *args)
    assert code == 2
    assert message.format(co=co) in out
    assert not (sd / "profiles").exists()


def test_init_keeps_a_valid_swarm_on_e2(home: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    co = init_checkout(home / "rl", "E2")
    sd = home / "st"
    code, out = run_cli(capsys, "init", "--yes", "--state-dir", str(sd), "--name", "s", "--rl-swarm-dir", str(co),
                        "--swarm", "b", "--model-name", "-")
    assert code == 0, out
    assert profiles.read(sd, "s").options["swarm"] == "B"
    code, out = run_cli(capsys, "init", "--yes", "--state-dir", str(sd), "--name", "t", "--rl-swarm-dir", str(co),
                        "--model-name", "Gensyn/Qwen2.5-0.5B-Instruct")
    assert code == 2 and (f"error: option --model-name: the checkout {co} is generation E2, which picks its model by "
                          "size (model_size), not by name; drop --model-name") in out


def test_model_name_is_checked_by_the_configuration(home: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings({"model_name": "not a model!!"}, env={})
    assert str(exc.value) == ("invalid configuration:\n  option model_name (from --model-name): 'not a model!!' is not a "
                              "Hugging Face model id like Gensyn/Qwen2.5-0.5B-Instruct (letters, digits, '-', '_', '.'; one '/')")
    assert load_settings({"model_name": "Gensyn/Qwen2.5-0.5B-Instruct"}, env={}).model_name == "Gensyn/Qwen2.5-0.5B-Instruct"


# --- 3. seconds flags take the duration grammar

def test_login_timeouts_take_durations(home: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import gswarm.cli.setup as setup_cli

    seen: list[tuple[float, float]] = []

    async def fake_login(settings, timeout, activation_timeout, port):  # type: ignore[no-untyped-def]
        seen.append((timeout, activation_timeout))
        return "org-1"

    monkeypatch.setattr(setup_cli, "_login", fake_login)
    co = init_checkout(home / "rl", "E5")
    code, out = run_cli(capsys, "login", "--rl-swarm-dir", str(co), "--state-dir", str(home / "st"),
                        "--timeout", "10m", "--activation-timeout", "1h30m")
    assert code == 0, out
    code, out = run_cli(capsys, "login", "--rl-swarm-dir", str(co), "--state-dir", str(home / "st"))
    assert code == 0, out
    assert seen == [(600.0, 5400.0), (600.0, 300.0)]
    code, out = run_cli(capsys, "login", "--rl-swarm-dir", str(co), "--timeout", "10x")
    assert code == 2 and "error: option --timeout: '10x' is not a duration; use seconds or e.g. 90s, 30m, 1h30m, 2d" in out


def test_control_wait_and_notify_timeout_take_durations(home: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import gswarm.daemon.client as client
    from gswarm.notify import dispatch

    waits: list[float] = []
    monkeypatch.setattr(client, "request", lambda sdir, verb, node, wait: waits.append(wait) or {"ok": True, "message": "ok"})
    code, out = run_cli(capsys, "restart", "--wait", "2m", "--state-dir", str(home / "st"))
    assert (code, waits) == (0, [120.0])
    code, out = run_cli(capsys, "stop", "--wait", "10m", "--state-dir", str(home / "st"))
    assert code == 2 and "error: option --wait: '10m' is out of range; use 0 to 300 seconds (5m)" in out

    timeouts: list[float] = []
    real_init = dispatch.Dispatcher.__init__

    def spy(self, channels, clock=None, timeout=10.0, **kw):  # type: ignore[no-untyped-def]
        timeouts.append(timeout)
        real_init(self, channels, clock, timeout, **kw)

    monkeypatch.setattr(dispatch.Dispatcher, "__init__", spy)
    monkeypatch.setenv("GSWARM_NOTIFY_URLS", "json://127.0.0.1:9/")
    run_cli(capsys, "notify", "test", "--timeout", "1s", "--state-dir", str(home / "st"))
    assert timeouts == [1.0]
    code, out = run_cli(capsys, "notify", "test", "--timeout", "soon", "--state-dir", str(home / "st"))
    assert code == 2 and "error: option --timeout: 'soon' is not a duration" in out


# --- 4. service uninstall/status take the scope flags; install outside a checkout refuses

def test_service_uninstall_and_status_take_scope_flags(home: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    co = init_checkout(home / "rl", "E5")
    sdir, target = home / "st", home / "units"
    code, out = run_cli(capsys, "service", "uninstall", "--user", "--dry-run")
    assert code == 2
    assert f"error: no gswarm service is installed (no manifest at {home / 'xdg' / 'gswarm' / 'service.json'})" in out
    code, out = run_cli(capsys, "service", "status", "--user")
    assert (code, out.strip()) == (1, "no gswarm service installed (`gswarm service install` installs one)")
    code, out = run_cli(capsys, "service", "install", "--user", "--target-dir", str(target), "--state-dir", str(sdir),
                        "--rl-swarm-dir", str(co))
    assert code == 0, out
    code, out = run_cli(capsys, "service", "uninstall", "--target-dir", str(target), "--dry-run")
    assert code == 0, out
    assert out.splitlines()[:2] == ["# dry run: systemd-user service 'gswarm'; nothing was changed",
                                    "not run (--target-dir): systemctl --user disable --now gswarm.service"]
    assert f"would remove: {target / 'gswarm.service'}" in out
    assert (target / "gswarm.service").is_file() and (target / "gswarm-service.json").is_file()
    code, out = run_cli(capsys, "service", "uninstall", "--user", "--system")
    assert code == 2 and "options --user, --system and --launchd exclude each other" in out


def test_service_install_outside_a_checkout_refuses(home: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    plain = home / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    code, out = run_cli(capsys, "service", "install", "--dry-run", "--user", "--state-dir", str(home / "st"))
    assert code == 2
    assert (f"error: option rl_swarm_dir: {plain} (the current folder (no --rl-swarm-dir, profile or config file set "
            "one)) is not an RL Swarm checkout, so the service would fail at every start; pass --rl-swarm-dir with your "
            "clone of gensyn-ai/rl-swarm or cd into it; --not-a-checkout installs anyway") in out
    profiles.write(home / "st", profiles.Profile("s", {"rl_swarm_dir": str(plain)}))
    code, out = run_cli(capsys, "service", "install", "--dry-run", "--user", "--state-dir", str(home / "st"),
                        "--config-file", str(_toml(home, 'profile = "s"\n')))
    assert code == 2 and f"{plain} (from profile s) is not an RL Swarm checkout" in out
    assert "(or correct it in profile s)" in out


def _toml(home: Path, text: str) -> Path:
    path = home / "g.toml"
    path.write_text(text)
    return path


# --- 5. small ones

def test_config_file_from_the_environment_is_named(home: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings({}, env={"GSWARM_CONFIG_FILE": "/nonexistent.toml"})
    assert str(exc.value) == ("config file /nonexistent.toml (from GSWARM_CONFIG_FILE) does not exist; create it or "
                              "unset GSWARM_CONFIG_FILE")
    with pytest.raises(ConfigError) as exc:
        load_settings({"config_file": "/nonexistent.toml"}, env={})
    assert str(exc.value) == "config file /nonexistent.toml (from --config-file) does not exist; create it or drop --config-file"


def test_profile_save_unknown_template_and_rm_of_a_template(home: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    sd = home / "st"
    code, out = run_cli(capsys, "profile", "save", "x", "--template", "nosuch", "--state-dir", str(sd))
    assert code == 2
    assert ("error: option --template: 'nosuch' is neither a built-in template nor a stored profile; templates: "
            "gpu-8-12gb, gpu-24gb, gpu-80gb, apple-mps, cpu-vps-32gb, codezero-ollama; stored profiles: none "
            "(`gswarm profile list`)") in out
    code, out = run_cli(capsys, "profile", "rm", "gpu-24gb", "--state-dir", str(sd))
    assert code == 2
    assert "error: gpu-24gb is a built-in template, not a stored profile: it cannot be removed (stored profiles: none)" in out


def test_backoff_initial_may_not_exceed_backoff_max(home: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings({"backoff_initial": "1m", "backoff_max": "5s"}, env={})
    assert str(exc.value) == (
        "invalid configuration:\n  options backoff_initial (from --backoff-initial) and backoff_max (from --backoff-max): "
        "backoff_initial (60 s) exceeds backoff_max (5 s); the first restart delay must not exceed the cap: lower "
        "backoff_initial or raise backoff_max")
    with pytest.raises(ConfigError, match=r"options backoff_initial \(from default\) and backoff_max \(from GSWARM_BACKOFF_MAX\)"):
        load_settings({}, env={"GSWARM_BACKOFF_MAX": "2s"})
    assert load_settings({"backoff_initial": "5s", "backoff_max": "5s"}, env={}).backoff_max == 5.0


def test_emulate_pace_takes_the_duration_grammar(home: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out = run_cli(capsys, "emulate", "node", "--pace", "1x", "--", "entry-arg")
    assert code == 2 and "error: option --pace: '1x' is not a duration; use seconds or e.g. 90s, 30m, 1h30m, 2d" in out


def test_api_override_names_the_backoff_pair(home: Path) -> None:
    from gswarm.api.errors import ApiError
    from gswarm.api.overrides import validate
    from gswarm.config import Settings

    with pytest.raises(ApiError) as exc:  # with a locked option beside it: no IndexError on the cross-option error
        validate(Settings(), {"api_token": "x", "backoff_initial": "10m"})
    assert exc.value.status == 422
    assert exc.value.detail[1] == {"field": "backoff_initial", "in": "body", "message": (
        "backoff_initial (600 s) exceeds backoff_max (300 s); the first restart delay must not exceed the cap: "
        "lower backoff_initial or raise backoff_max")}
