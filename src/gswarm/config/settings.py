"""The effective configuration of one supervised node.

Sources, lowest precedence first (:data:`LAYERS`): field defaults, the profile
(``--profile`` / ``GSWARM_PROFILE`` / ``profile`` in the file, else the one chosen with
``gswarm profile use``; :mod:`gswarm.config.profiles`), the optional TOML file
(``--config-file`` / ``GSWARM_CONFIG_FILE``; a ``[gswarm]`` table or top-level
keys), options saved through the API (``<state_dir>/config_override.json``, applied
on the next start), environment variables ``GSWARM_<FIELD>`` (upper case), then
command-line flags. Invalid values raise :class:`gswarm.errors.ConfigError` naming the
option, where it came from and the allowed values; so does an unknown ``GSWARM_*``
variable (like an unknown TOML key), except GSwarm's own internal ones
(:data:`INTERNAL_ENV`). Seconds options also take the duration grammar of
:mod:`gswarm.config.durations` (``90s``, ``30m``, ``1h30m``, ``2d``). Where each
effective value came from: :func:`option_sources`.

Secrets (``hf_token``, ``api_token``) are ``SecretStr``: passed to children only
through the environment and shown as ``***`` everywhere else.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from gswarm.config.durations import coerce_duration
from gswarm.errors import ConfigError
from gswarm.redact import redact_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ModelSize = Literal["0.5", "1.5", "7", "32", "72"]
SECRET_FIELDS = frozenset({"hf_token", "api_token"})
# seconds options: also "90s", "30m", "1h30m", "2d" (gswarm.config.durations)
DURATION_FIELDS = ("login_timeout", "activation_timeout", "backoff_initial", "backoff_max", "healthy_uptime",
                   "crash_loop_window", "stop_timeout", "prompt_idle", "outage_backoff_min", "outage_backoff_max",
                   "oom_step_up_after", "stall_timeout", "sample_interval", "notify_dedup_window",
                   "notify_flap_window", "notify_timeout", "heartbeat_interval")
# GSWARM_* names GSwarm itself sets or reads that are not options (never reported as unknown)
INTERNAL_ENV = frozenset({"GSWARM_RUN_MARKER", "GSWARM_SMTP_PASSWORD"})
INTERNAL_ENV_PREFIXES = ("GSWARM_EMU_",)  # the emulator's knobs (gswarm.emulator)
LAYERS = ("default", "profile", "file", "api override", "env", "flag")

# Hugging Face repo id ("owner/name" or "name"): letters, digits, '-', '_', '.', at most 96 per part
MODEL_NAME_RULE = "a Hugging Face model id like Gensyn/Qwen2.5-0.5B-Instruct (letters, digits, '-', '_', '.'; one '/')"
_MODEL_NAME = r"(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
NODE_NAME_RULE = "1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"
_NODE_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"


def node_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a node name, or None when it can.

    A node name becomes a folder (``<state_dir>/logs/<node>/``), a store key and a URL part, so it is
    limited to :data:`NODE_NAME_RULE` (``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``): no separator, no ``..``
    escape (a leading dot is refused), nothing a filesystem calls too long.
    """
    import re

    if not isinstance(name, str):
        return f"expected text, got {type(name).__name__}"
    if name == "":
        return f"empty; give a name of {NODE_NAME_RULE}"
    if not re.fullmatch(_NODE_NAME, name):
        shown = name if len(name) <= 40 else name[:40] + "…"
        return f"{shown!r} is not allowed; use {NODE_NAME_RULE}"
    return None


def check_node_name(name: Any, option: str) -> str:
    """``name`` when it is a valid node name (:func:`node_name_problem`); else ConfigError naming ``option``
    (e.g. ``"--node"``) and what is allowed."""
    problem = node_name_problem(name)
    if problem:
        raise ConfigError(f"option {option}: node name {problem}")
    return name


class Settings(BaseSettings):
    """All options of ``gswarm run`` and friends. Units are in each field's description."""

    model_config = SettingsConfigDict(env_prefix="GSWARM_", extra="forbid", validate_default=True)

    # --- where things are
    node_name: str = Field("default", description="Name of this node in logs, store and API.")
    rl_swarm_dir: Path = Field(Path("."), description="The RL Swarm checkout.")
    state_dir: Path | None = Field(None, description="GSwarm's own files (default: platformdirs user state dir).")
    config_file: Path | None = Field(None, description="Optional TOML file with these options.")
    profile: str | None = Field(None, description="Named profile (<state_dir>/profiles/NAME.toml) applied below the config file; `gswarm profile list`.")

    # --- RL Swarm options (original GSwarm); meaning per generation in gswarm.rlswarm.options
    python: Path | None = Field(None, description="Interpreter of the node's venv (direct mode).")
    via_script: bool = Field(False, description="Run run_rl_swarm.sh under a pty instead of the entry point.")
    testnet: bool = Field(True, description="Connect to the Gensyn testnet (E1/E2 prompt).")
    swarm: Literal["A", "B"] = Field("A", description="E2 swarm: A = Math (gsm8k), B = Math Hard (dapo).")
    model_size: ModelSize = Field("0.5", description="E2 parameter count in billions.")
    model_name: str | None = Field(None, description="Hugging Face model id (E3-E6 MODEL_NAME).")
    hf_token: SecretStr | None = Field(None, description="Hugging Face token for pushing models (None = no push).")
    org_id: str | None = Field(None, description="ORG_ID from modal-login userData.json.")
    identity_path: Path | None = Field(None, description="swarm.pem path (IDENTITY_PATH).")
    contract_address: str | None = Field(None, description="Swarm coordinator contract (E2 --contract_address, E3-E6 SWARM_CONTRACT).")
    game: Literal["gsm8k", "dapo"] | None = Field(None, description="E2 game.")
    config_path: Path | None = Field(None, description="Node config YAML (E0-E2 --config).")
    cpu_only: bool = Field(False, description="Force the CPU configuration (E0-E2; no effect from E3).")
    requirements: Path | None = Field(None, description="Requirements file to install instead of the generation's.")
    prg_game: bool = Field(True, description="E5: take part in the AI Prediction Market.")
    extra_env: dict[str, str] = Field(default_factory=dict, description="Extra environment for the node.")

    # --- environment setup and login (issue #3)
    auto_setup: bool = Field(True, description="Before gswarm run in direct mode: venv, requirements, modal-login, login.")
    hardware: Literal["auto", "cpu", "gpu", "mps"] = Field("auto", description="Requirements flavour; auto detects NVIDIA / Apple MPS.")
    login_timeout: float = Field(600.0, gt=0, description="Wait this long for userData.json after printing the login URL, seconds.")
    activation_timeout: float = Field(300.0, gt=0, description="Wait this long for the API key to become activated, seconds.")
    modal_port: int = Field(3000, ge=1, le=65535, description="modal-login port (the node hard-codes 3000; change only for tests).")
    ollama_port: int = Field(11434, ge=1, le=65535, description="ollama server port (E6).")

    # --- supervision (seconds)
    backoff_initial: float = Field(5.0, gt=0, description="First restart delay, seconds.")
    backoff_max: float = Field(300.0, gt=0, description="Cap of the restart delay, seconds.")
    backoff_factor: float = Field(2.0, ge=1.0, description="Growth of the delay per consecutive failure.")
    backoff_jitter: bool = Field(True, description="Full jitter: the delay is uniform in [0, computed].")
    healthy_uptime: float = Field(300.0, gt=0, description="Uptime after which the failure count resets, seconds.")
    restart_on_clean_exit: bool = Field(True, description="Restart when the node exits 0 unexpectedly.")
    crash_loop_max: int = Field(5, ge=1, description="Failures within crash_loop_window that mean FATAL.")
    crash_loop_window: float = Field(600.0, gt=0, description="Crash-loop window, seconds.")
    stop_timeout: float = Field(30.0, gt=0, description="Grace between SIGTERM and SIGKILL, seconds.")
    prompt_idle: float = Field(0.3, gt=0, description="Flush a partial line (prompt) after this idle time, seconds.")
    outage_backoff_min: float = Field(180.0, gt=0, description="Minimum restart delay during an upstream outage (bootstrap peers, chain, modal proxy), seconds.")
    outage_backoff_max: float = Field(1800.0, gt=0, description="Cap of the restart delay during an upstream outage, seconds.")
    oom_step_up_after: float = Field(21600.0, gt=0, description="Healthy uptime after which the out-of-memory ladder steps back up, seconds.")
    stall_timeout: float | None = Field(None, gt=0, description="No-progress time that means stalled, seconds (default per generation).")

    # --- monitoring, store, logs
    sample_interval: float = Field(10.0, gt=0, description="Resource sampling period, seconds.")
    retention_days: float = Field(30.0, gt=0, description="Keep history this many days.")
    log_max_bytes: int = Field(50 * 1024 * 1024, gt=0, description="Rotate a log file at this size, bytes.")
    log_backups: int = Field(10, ge=0, description="Rotated log files kept.")

    # --- API / dashboard
    api_enabled: bool = Field(True, description="Serve the REST API and dashboard inside gswarm run.")
    api_host: str = Field("127.0.0.1", description="API bind address.")
    api_port: int = Field(8787, ge=0, le=65535, description="API port (0 = pick a free one).")
    api_token: SecretStr | None = Field(None, description="Bearer token (default: generated, stored 0600).")

    # --- notifications
    notify_urls: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Apprise URLs (env: space-separated).")
    notify_min_severity: Literal["info", "warning", "error", "critical"] = Field("warning", description="Send only messages at least this severe.")
    quiet_hours: str | None = Field(None, description="HH:MM-HH:MM local time; non-critical messages wait.")
    notify_channels: list[dict[str, Any]] = Field(default_factory=list, description="TOML [[notify_channels]] tables: url, name, tags, kinds, min_severity.")
    notify_dedup_window: float = Field(1800.0, gt=0, description="Repeats of node+kind+key within this many seconds are dropped.")
    notify_flap_count: int = Field(5, ge=2, description="Restarts within notify_flap_window that mean flapping.")
    notify_flap_window: float = Field(600.0, gt=0, description="Flap window, seconds.")
    notify_timeout: float = Field(10.0, gt=0, description="Per send attempt, seconds.")
    notify_retries: int = Field(2, ge=0, description="Extra attempts per message (backoff 5 s x 2^n).")
    notify_digest: str | None = Field("daily 08:00", description='"daily HH:MM", "weekly mon HH:MM" or "off" (local time).')
    notify_disk_low_gb: float = Field(5.0, ge=0, description="Alert when free disk falls below this, GiB.")
    notify_gpu_hot_c: float = Field(85.0, gt=0, description="Alert when a GPU is hotter than this, degrees Celsius.")

    # --- emulator
    emulated: bool = Field(False, description="Supervise a built-in emulated node (no GPU, login or network).")

    # --- unattended running (issue #14): dead-man heartbeat (healthchecks.io / Uptime Kuma push style)
    heartbeat_url: str | None = Field(None, description="Ping this URL (GET) every heartbeat_interval while the node is healthy (None = off).")
    heartbeat_interval: float = Field(60.0, gt=0, description="Seconds between heartbeat pings.")
    heartbeat_fail_url: str | None = Field(None, description="POSTed the cause when GSwarm gives up (default: heartbeat_url + '/fail').")

    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator(*DURATION_FIELDS, mode="before")
    @classmethod
    def _durations(cls, v: Any) -> Any:
        return coerce_duration(v)

    @field_validator("node_name", mode="before")
    @classmethod
    def _node_name(cls, v: Any) -> Any:
        problem = node_name_problem(v)
        if problem:
            raise ValueError(f"node name {problem}")
        return v

    @field_validator("model_name")
    @classmethod
    def _model_id(cls, v: str | None) -> str | None:
        import re

        if v is not None and (not re.fullmatch(_MODEL_NAME, v) or ".." in v or v.endswith(".")):
            raise ValueError(f"{v[:60]!r} is not {MODEL_NAME_RULE}")
        return v

    @model_validator(mode="after")
    def _backoff_order(self) -> "Settings":
        if self.backoff_initial > self.backoff_max:
            raise ValueError(f"backoff_initial ({self.backoff_initial:g} s) exceeds backoff_max ({self.backoff_max:g} s); "
                             "the first restart delay must not exceed the cap: lower backoff_initial or raise backoff_max")
        return self

    @field_validator("notify_urls", mode="before")
    @classmethod
    def _split_urls(cls, v: Any) -> Any:
        if isinstance(v, str):
            return v.split()
        return v

    @field_validator("notify_digest")
    @classmethod
    def _digest_spec(cls, v: str | None) -> str | None:
        import re

        if v is None or v.strip().lower() == "off":
            return v
        if not re.fullmatch(r"\s*(daily|weekly\s+(mon|tue|wed|thu|fri|sat|sun))\s+([01]?\d|2[0-3]):[0-5]\d\s*", v, re.I):
            raise ValueError('use "daily HH:MM", "weekly mon HH:MM" (mon..sun) or "off"')
        return v

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_spec(cls, v: str | None) -> str | None:
        import re

        if v is not None and not re.fullmatch(r"\s*([01]?\d|2[0-3]):[0-5]\d\s*-\s*([01]?\d|2[0-3]):[0-5]\d\s*", v):
            raise ValueError('use "HH:MM-HH:MM", e.g. "22:00-07:00"')
        return v

    @field_validator("extra_env")
    @classmethod
    def _env_names(cls, v: dict[str, str]) -> dict[str, str]:
        # os.execve / Popen refuse these (ValueError at the node's start); say so while loading instead
        for name, value in v.items():
            if not name.strip():
                raise ValueError("a variable name is empty; give every entry a name")
            if "=" in name or "\0" in name:
                raise ValueError(f"name {name!r} may not contain '=' or NUL")
            if "\0" in value:
                raise ValueError(f"the value of {name!r} may not contain NUL")
        return v

    @field_validator("notify_channels", mode="before")
    @classmethod
    def _channel_tables(cls, v: Any) -> Any:
        if not isinstance(v, list):
            raise ValueError("expected a list of tables ([[notify_channels]] in TOML, a JSON list in GSWARM_NOTIFY_CHANNELS)")
        for i, table in enumerate(v):
            problem = _channel_problem(table)
            if problem:
                raise ValueError(f"entry {i} (notify_channels[{i}]): {problem}")
        return v

    @field_validator("heartbeat_url", "heartbeat_fail_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            return None
        if v is not None and not v.strip().lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. https://hc-ping.com/<uuid>")
        return v.strip() if v is not None else v

    @field_validator("model_size", mode="before")
    @classmethod
    def _size_str(cls, v: Any) -> Any:
        if isinstance(v, (int, float)):
            return f"{v:g}"
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings reads GSWARM_* itself (to name the variable in errors and treat "" as unset)
        return (init_settings,)


_CHANNEL_KEYS = ("url", "name", "tags", "kinds", "min_severity")
_SEVERITIES = ("debug", "info", "warning", "error", "critical")


def _channel_problem(table: Any) -> str | None:
    """What is wrong with one ``[[notify_channels]]`` table (never echoes the URL: it may hold a token), or None.

    Same shape as ``gswarm.notify.channels.ChannelConfig`` (config may not import notify)."""
    if not isinstance(table, dict):
        return 'not a table; write [[notify_channels]] with url = "<Apprise URL>"'
    unknown = sorted(str(k) for k in table if k not in _CHANNEL_KEYS)
    if unknown:
        return f"field {unknown[0]!r} is unknown; allowed fields: {', '.join(_CHANNEL_KEYS)}"
    if "url" not in table:
        return 'field url is missing; every channel needs url = "<Apprise URL>" (see `gswarm notify url --help`)'
    if not isinstance(table["url"], str) or not table["url"].strip():
        return 'field url must be a non-empty string (an Apprise URL, e.g. url = "tgram://TOKEN/CHAT")'
    if not isinstance(table.get("name", ""), str):
        return "field name must be a string"
    for key in ("tags", "kinds"):
        val = table.get(key)
        if val is not None and not isinstance(val, str) and not (isinstance(val, list) and all(isinstance(x, str) for x in val)):
            return f'field {key} must be a list of strings (e.g. {key} = ["a", "b"]) or a comma-separated string'
    sev = table.get("min_severity")
    if sev is not None and sev not in _SEVERITIES:
        return f"field min_severity must be one of {', '.join(_SEVERITIES)}"
    return None


def _read_toml(path: Path, given_by: str = "--config-file") -> dict[str, Any]:
    """Options from a TOML file: top-level keys, overridden by those of a ``[gswarm]`` table.

    ``given_by`` names where the path came from (``--config-file`` or ``GSWARM_CONFIG_FILE``) in the advice.
    Raises ConfigError naming the file for a missing/unreadable file, bad encoding or bad TOML.
    A UTF-8 byte-order mark (Windows editors) is accepted.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
        data = tomllib.loads(text)
    except FileNotFoundError:
        drop = "unset GSWARM_CONFIG_FILE" if given_by == "GSWARM_CONFIG_FILE" else "drop --config-file"
        raise ConfigError(f"config file {path} (from {given_by}) does not exist; create it or {drop}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} (from {given_by}) is a folder; pass the path of a TOML file to {given_by}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror}); check the path and its permissions") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}; fix the file") from None
    table = data.pop("gswarm", None)
    if table is not None and not isinstance(table, dict):
        raise ConfigError(f"config file {path}: `gswarm` must be a table ([gswarm]); fix the file")
    data.update(table or {})
    return {k.replace("-", "_"): v for k, v in data.items()}


OVERRIDE_FILE = "config_override.json"


class OverrideFileInvalid(ConfigError):
    """``config_override.json`` exists but cannot be used: ``path``, ``problem`` (the words after its name)."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"{path} {problem}; fix or delete it (it holds options saved through the API)")


def read_override_file(path: Path) -> dict[str, Any]:
    """The options in an override file (``{}`` when it is missing). Raises :class:`OverrideFileInvalid`
    when it is unreadable, not UTF-8, not JSON or not a JSON object (the file is left as it is)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise OverrideFileInvalid(path, "is not valid JSON (not UTF-8 text)") from None
    except OSError as exc:
        raise OverrideFileInvalid(path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise OverrideFileInvalid(path, f"is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise OverrideFileInvalid(path, "must hold a JSON object of option -> value")
    return data


def _read_override(state_dir: Any) -> dict[str, Any]:
    """Options saved through the API (``<state_dir>/config_override.json``), applied on the next start.

    A missing file means no override; an unusable one raises :class:`OverrideFileInvalid` (a ConfigError).
    """
    from gswarm.paths import state_dir as resolve

    return read_override_file(resolve(Path(state_dir) if state_dir else None, writable=False) / OVERRIDE_FILE)


_JSON_FIELDS = frozenset({"extra_env", "notify_channels"})


def _env_values(env: Mapping[str, str]) -> dict[str, Any]:
    """``GSWARM_<FIELD>`` values; empty means unset; dict/list options are JSON (ConfigError if not).

    An unknown ``GSWARM_*`` variable is a ConfigError like an unknown TOML key (a typo such as
    ``GSWARM_BACKOF_MAX`` would otherwise be ignored silently); :data:`INTERNAL_ENV` and
    :data:`INTERNAL_ENV_PREFIXES` are GSwarm's own and allowed."""
    unknown = sorted(k for k in env if k.startswith("GSWARM_") and k[7:].lower() not in Settings.model_fields
                     and k not in INTERNAL_ENV and not k.startswith(INTERNAL_ENV_PREFIXES))
    if unknown:
        raise ConfigError(f"environment variable {unknown[0]} is not a GSwarm option; unset it or fix its name "
                          f"(`gswarm options` lists every GSWARM_* variable)"
                          + (f"; also unknown: {', '.join(unknown[1:])}" if len(unknown) > 1 else ""))
    out: dict[str, Any] = {}
    for name in Settings.model_fields:
        key = f"GSWARM_{name.upper()}"
        raw = env.get(key, "")
        if raw.strip() == "":
            continue
        if name in _JSON_FIELDS:
            try:
                out[name] = json.loads(raw)
            except ValueError:
                raise ConfigError(f"option {name} (from {key}): not valid JSON; write it as JSON, "
                                  f"e.g. {key}='{{\"NAME\": \"value\"}}'" if name == "extra_env"
                                  else f"option {name} (from {key}): not valid JSON; write a JSON list of tables") from None
        else:
            out[name] = raw
    return out


def _profile_values(name: Any, where: str, state_dir: Any, env: Mapping[str, str]) -> tuple[str | None, dict[str, Any]]:
    """(source label, options) of the profile to apply: ``name`` (given as ``where``) or the one chosen with
    ``gswarm profile use``; ``(None, {})`` when there is none. ConfigError from :mod:`gswarm.config.profiles`."""
    from gswarm.config import profiles
    from gswarm.paths import state_dir as resolve

    folder = resolve(Path(state_dir) if state_dir else None, writable=False)
    if name is None:
        name = profiles.active(folder)
        where = "gswarm profile use"
        if name is None:
            return None, {}
    if not isinstance(name, str):
        raise ConfigError(f"option profile (from {where}): expected a profile name, got {name!r}")
    try:
        prof = profiles.read(folder, profiles.check_name(name))
        return f"profile {name}", profiles.resolve(prof, env)
    except ConfigError as exc:
        if where != "gswarm profile use":
            raise
        raise ConfigError(f"{exc} (it is the default profile; `gswarm profile use --none` stops using it)") from None


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build the effective :class:`Settings`.

    ``flags`` holds only options given on the command line (None values are
    ignored). ``env`` defaults to ``os.environ``. Layers, lowest first: defaults,
    profile, file, API override, env, flags (:data:`LAYERS`); where each value came
    from is kept (:func:`option_sources`). Raises ConfigError naming the option,
    its source (flag, env var, file, profile) and what is allowed.
    """
    env = os.environ if env is None else env
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env_vals = _env_values(env)
    cfg_file = flags.get("config_file") or env_vals.get("config_file")
    file_vals = _read_toml(Path(cfg_file), "--config-file" if flags.get("config_file") else "GSWARM_CONFIG_FILE") if cfg_file else {}
    for table in ("nodes", "host"):  # [[nodes]] / [host]: read by gswarm.config.nodes (one host, many nodes)
        file_vals.pop(table, None)
    sd = flags.get("state_dir") or env_vals.get("state_dir") or file_vals.get("state_dir")
    if sd is not None and not isinstance(sd, (str, os.PathLike)):  # only the TOML file can hold a non-string
        raise ConfigError(f"option state_dir (from file {cfg_file}): expected a path, got {type(sd).__name__} {sd!r}; "
                          f'write it as a string, e.g. state_dir = "/var/lib/gswarm"')
    prof_where = "--profile" if "profile" in flags else "GSWARM_PROFILE" if "profile" in env_vals else f"file {cfg_file}"
    prof_label, prof_vals = _profile_values(flags.get("profile") or env_vals.get("profile") or file_vals.get("profile"),
                                            prof_where, sd, env)
    override = _read_override(sd)
    origin: dict[str, str] = {}
    merged: dict[str, Any] = {}
    sources = ((prof_label, prof_vals), ("file " + str(cfg_file), file_vals), ("api override " + OVERRIDE_FILE, override),
               ("env", env_vals), ("flag", flags))
    for src_name, values in sources:
        for k, v in values.items():
            merged[k] = v
            origin[k] = f"GSWARM_{k.upper()}" if src_name == "env" else (f"--{k.replace('_', '-')}" if src_name == "flag" else src_name)
    if prof_label and "profile" not in origin:
        origin["profile"] = "gswarm profile use"
        merged["profile"] = prof_label.removeprefix("profile ")
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(explain(exc, origin)) from None
    settings._sources = origin
    return settings


def option_sources(settings: Settings) -> dict[str, str]:
    """Where each option's value came from: ``"default"``, ``"profile NAME"``, ``"file PATH"``,
    ``"api override config_override.json"``, ``"GSWARM_X"`` (env) or ``"--x"`` (flag); every field."""
    known = getattr(settings, "_sources", None) or {}
    return {name: known.get(name, "default") for name in Settings.model_fields}


def source_of(settings: Any, field: str) -> str:
    """Where ``field``'s value came from, as words for an error: ``"--rl-swarm-dir"``, ``"GSWARM_RL_SWARM_DIR"``,
    ``"profile s"``, ``"file PATH"``, … or ``"default"`` (:func:`option_sources`; ``"default"`` for a Settings
    built without :func:`load_settings`)."""
    return (getattr(settings, "_sources", None) or {}).get(field, "default")


def explain(exc: ValidationError, origin: Mapping[str, str], title: str = "invalid configuration") -> str:
    """One line per error of ``exc``: ``option NAME (from SOURCE): what is wrong``, under ``title:``."""
    import re

    lines = []
    for err in exc.errors():
        if not err["loc"]:  # a check across options (model validator): name each option it mentions, with its source
            msg = err["msg"].removeprefix("Value error, ")
            named = [f for f in re.findall(r"[a-z][a-z0-9_]+", msg) if f in Settings.model_fields]
            named = list(dict.fromkeys(named))
            lines.append("options " + " and ".join(f"{f} (from {origin.get(f, 'default')})" for f in named) + f": {msg}")
            continue
        field = str(err["loc"][0])
        where = origin.get(field, "default")
        msg = err["msg"]
        inner = "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in err["loc"][1:])
        if inner:  # e.g. extra_env['A'] / notify_channels[0]: which entry is wrong
            msg = f"entry {inner}: {msg}"
        if err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        elif err["type"] == "extra_forbidden":
            msg = "unknown option; `gswarm options` lists every option name"
        elif err["type"] == "literal_error":
            msg = f"invalid value {err.get('input')!r}; {msg[:1].lower()}{msg[1:]}"
        lines.append(f"option {field} (from {where}): {msg}")
    return f"{title}:\n  " + "\n  ".join(lines)


_explain = explain


def redacted_dict(settings: Settings) -> dict[str, Any]:
    """The settings as JSON-ready data with every secret replaced by ``"***"`` (see :func:`redact_options`)."""
    return redact_options(settings.model_dump(mode="json"))


def redact_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of option → value data (all or some options) safe to show: secret options, credentials in
    notification URLs (``notify_urls`` and the ``url`` of ``notify_channels``) and secret-named
    ``extra_env`` values become ``"***"``."""
    out = dict(options)
    for name in SECRET_FIELDS:
        if out.get(name):
            out[name] = "***"
    for name in ("heartbeat_url", "heartbeat_fail_url"):  # a push URL carries its check's token in the path
        if isinstance(out.get(name), str):
            out[name] = redact_url(out[name])
    if isinstance(out.get("notify_urls"), list):
        out["notify_urls"] = [redact_url(str(u)) for u in out["notify_urls"]]
    if isinstance(out.get("notify_channels"), list):
        out["notify_channels"] = [{**c, "url": redact_url(str(c["url"]))} if isinstance(c, dict) and "url" in c else c
                                  for c in out["notify_channels"]]
    if isinstance(out.get("extra_env"), dict):
        out["extra_env"] = {k: ("***" if is_secret_name(k) else v) for k, v in out["extra_env"].items()}
    return out


def is_secret_name(name: str) -> bool:
    """True for environment/option names that carry secrets (TOKEN, KEY, PASSWORD, SECRET)."""
    upper = name.upper()
    return any(w in upper for w in ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "PRIVATE", "API_KEY"))
