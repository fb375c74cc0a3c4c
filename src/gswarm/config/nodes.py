"""``[[nodes]]`` tables: several RL Swarm nodes supervised by one ``gswarm run`` (issue #15).

A TOML config file may declare nodes; every node inherits the top-level options and overrides
those that differ::

    rl_swarm_dir = "/srv/rl-swarm"          # inherited by every node
    [host]
    stagger = 20                            # seconds between two node starts (default 10)
    p2p_base_port = 38331                   # E0-E2: node i listens on p2p_base_port + i
    [[nodes]]
    name = "gpu0"
    gpus = [0]                              # CUDA_VISIBLE_DEVICES=0 ("auto": one GPU per node from NVML)
    [[nodes]]
    name = "gpu1"
    checkout = "/srv/rl-swarm-2"            # own checkout (else the shared top-level one)
    gpus = [1]
    account = "second"                      # another Gensyn account: own modal-login port (E3-E6 only)
    model_name = "Gensyn/Qwen2.5-1.5B-Instruct"

Node keys: ``name`` (required), ``checkout``, ``gpus``, ``p2p_port``, ``account`` and any option of
:class:`~gswarm.config.Settings` except the host-wide ones (:data:`HOST_ONLY`). ``extra_env`` merges
over the top-level one. Every problem raises ConfigError naming the file, the node and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gswarm.config.settings import NODE_NAME_RULE, Settings, _read_toml, node_name_problem
from gswarm.errors import ConfigError

NODE_KEYS = ("name", "checkout", "gpus", "p2p_port", "account")
HOST_ONLY = frozenset({
    "state_dir", "config_file", "api_enabled", "api_host", "api_port", "api_token", "notify_urls",
    "notify_min_severity", "quiet_hours", "notify_channels", "notify_dedup_window", "notify_flap_count",
    "notify_flap_window", "notify_timeout", "notify_retries", "notify_digest", "notify_disk_low_gb",
    "notify_gpu_hot_c", "retention_days", "log_max_bytes", "log_backups", "emulated", "sample_interval",
})
"""Options shared by the whole host (one store, API, notifier): only at the top level of the file."""
HOST_KEYS = ("stagger", "p2p_base_port", "node_ram_gb", "node_vram_gb")
DEFAULT_STAGGER = 10.0
DEFAULT_P2P_BASE = 38331  # E0-E2 GPU configs' host_maddr port (generations.md §4 "Ports")
DEFAULT_NODE_RAM_GB = 32.0  # v0.7.0 README "Hardware": "a minimum of 32GB RAM"


@dataclass(frozen=True)
class NodeConfig:
    """One ``[[nodes]]`` table. ``checkout`` None = the top-level ``rl_swarm_dir``; ``gpus`` a tuple of
    GPU indices, ``"auto"`` or None (not placed: the node sees every GPU); ``options`` the Settings
    overrides (validated)."""

    name: str
    checkout: Path | None = None
    gpus: tuple[int, ...] | str | None = None
    p2p_port: int | None = None
    account: str = "default"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HostConfig:
    """The nodes of one host plus ``stagger`` (seconds between starts), ``p2p_base_port``, and the fit check's
    need per node: ``node_ram_gb`` (GiB of host RAM) and ``node_vram_gb`` (GiB free on each of its GPUs; 0 = no check)."""

    nodes: tuple[NodeConfig, ...]
    stagger: float = DEFAULT_STAGGER
    p2p_base_port: int = DEFAULT_P2P_BASE
    node_ram_gb: float = DEFAULT_NODE_RAM_GB
    node_vram_gb: float = 0.0


def read_host_config(path: Path | None) -> HostConfig | None:
    """The ``[[nodes]]`` and ``[host]`` tables of TOML file ``path``; None when it has no ``nodes``.

    Raises ConfigError (file unreadable, bad TOML, or any problem :func:`parse_host` names)."""
    if path is None:
        return None
    data = _read_toml(Path(path))
    if "nodes" not in data:
        return None
    return parse_host(data.get("nodes"), data.get("host"), f"config file {path}")


def parse_host(tables: Any, host: Any, source: str) -> HostConfig:
    """Validate raw ``nodes`` (list of tables) and ``host`` (table or None) read from ``source``."""
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{source}: `nodes` must be one or more [[nodes]] tables, each with name = \"...\"")
    nodes = tuple(_node(t, i, source) for i, t in enumerate(tables))
    _check_unique(nodes, source)
    stagger, base = DEFAULT_STAGGER, DEFAULT_P2P_BASE
    if host is not None:
        if not isinstance(host, dict):
            raise ConfigError(f"{source}: `host` must be a table ([host]) with {', '.join(HOST_KEYS)}")
        unknown = sorted(k for k in host if k not in HOST_KEYS)
        if unknown:
            raise ConfigError(f"{source}: [host] field {unknown[0]!r} is unknown; allowed: {', '.join(HOST_KEYS)}")
        stagger = _number(host.get("stagger", stagger), f"{source}: [host] field stagger", 0.0, 3600.0)
        base = int(_number(host.get("p2p_base_port", base), f"{source}: [host] field p2p_base_port", 1024, 65000))
    host = host or {}
    ram = _number(host.get("node_ram_gb", DEFAULT_NODE_RAM_GB), f"{source}: [host] field node_ram_gb", 0.0, 4096.0)
    vram = _number(host.get("node_vram_gb", 0.0), f"{source}: [host] field node_vram_gb", 0.0, 1024.0)
    return HostConfig(nodes, stagger, base, ram, vram)


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(f"{where}: {value!r} must be a number from {low:g} to {high:g}")
    return float(value)


def _node(table: dict[str, Any], index: int, source: str) -> NodeConfig:
    table = {str(k).replace("-", "_"): v for k, v in table.items()}
    name = table.get("name")
    where = f"{source}: node {name!r}" if isinstance(name, str) else f"{source}: [[nodes]] #{index + 1}"
    if name is None:
        problem: str | None = f"is missing; give each node a name of {NODE_NAME_RULE}"
    elif not isinstance(name, str):
        problem = f"must be text ({NODE_NAME_RULE}), got {type(name).__name__}"
    else:
        problem = node_name_problem(name)  # the one rule of --node-name (settings.NODE_NAME_RULE)
    if problem:
        raise ConfigError(f"{where}: field name {problem} (e.g. name = \"gpu0\")")
    for key in table:
        if key in ("node_name", "rl_swarm_dir"):
            raise ConfigError(f"{where}: field {key!r} is set by the node table; use "
                              f"{'name' if key == 'node_name' else 'checkout'} instead")
        if key in HOST_ONLY:
            raise ConfigError(f"{where}: field {key!r} is shared by every node; set it at the top level of the file")
        if key not in NODE_KEYS and key not in Settings.model_fields:
            raise ConfigError(f"{where}: field {key!r} is unknown; use {', '.join(NODE_KEYS)} or an option "
                              "of `gswarm options`")
    checkout = table.get("checkout")
    if checkout is not None and not isinstance(checkout, str):
        raise ConfigError(f"{where}: field checkout must be a path string")
    port = table.get("p2p_port")
    if port is not None:
        port = int(_number(port, f"{where}: field p2p_port", 1024, 65535))
    account = table.get("account", "default")
    if not isinstance(account, str) or not account:
        raise ConfigError(f"{where}: field account must be a non-empty string (nodes with one account share a login)")
    options = {k: v for k, v in table.items() if k not in NODE_KEYS}
    return NodeConfig(name, Path(checkout).expanduser() if checkout else None, _gpus(table.get("gpus"), where),
                      port, account, options)


def _gpus(value: Any, where: str) -> tuple[int, ...] | str | None:
    if value is None or value == "auto":
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(g, int) and not isinstance(g, bool) and g >= 0 for g in value):
        raise ConfigError(f"{where}: field gpus must be a list of GPU indices (e.g. gpus = [0, 1]), [] for CPU "
                          f"only, or \"auto\"; got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: field gpus lists a GPU twice ({value!r})")
    return tuple(value)


def _check_unique(nodes: tuple[NodeConfig, ...], source: str) -> None:
    seen: dict[Any, str] = {}
    for n in nodes:
        keys = [("name", n.name.lower())]
        keys += [("gpu", g) for g in (n.gpus if isinstance(n.gpus, tuple) else ())]
        keys += [("p2p_port", n.p2p_port)] if n.p2p_port is not None else []
        ident = n.options.get("identity_path")
        keys += [("identity_path", str(Path(str(ident)).expanduser()))] if ident else []
        for kind, value in keys:
            other = seen.get((kind, value))
            if other is not None:
                what = {"name": "name", "gpu": f"GPU {value}", "p2p_port": f"p2p_port {value}",
                        "identity_path": f"identity_path {value} (two nodes would share one peer ID)"}[kind]
                raise ConfigError(f"{source}: nodes {other!r} and {n.name!r} both use {what}; give each node its own")
            seen[(kind, value)] = n.name


def node_settings(base: Settings, node: NodeConfig, source: str = "config file") -> Settings:
    """``base`` with ``node``'s overrides (``node_name``, ``rl_swarm_dir`` from ``checkout``, merged
    ``extra_env``), validated; ConfigError naming the node and the field.

    The result's ``model_fields_set`` is ``base``'s plus the node's own keys (and ``node_name``,
    ``rl_swarm_dir`` when a checkout is given): an inherited option the operator never set stays unset,
    so the "means nothing for E6" notes name only options set by flag, env, file or profile."""
    options = dict(node.options)
    if "extra_env" in options and isinstance(options["extra_env"], dict):
        options["extra_env"] = {**base.extra_env, **options["extra_env"]}
    options["node_name"] = node.name
    if node.checkout is not None:
        options["rl_swarm_dir"] = node.checkout
    try:
        settings = Settings.model_validate({**base.model_dump(), **options})
    except ValidationError as exc:
        err = exc.errors()[0]
        fld = str(err["loc"][0]) if err["loc"] else "?"
        raise ConfigError(f"{source}: node {node.name!r}: field {fld}: {err['msg']}") from None
    # model_validate of the full dump marks every field as given; keep only what really was
    object.__setattr__(settings, "__pydantic_fields_set__", set(base.model_fields_set) | set(options))
    # keep where each value came from (errors name e.g. "profile s"); the node's own fields come from its table
    settings._sources = {**(getattr(base, "_sources", None) or {}),
                         **{k: f"{source} node {node.name}" for k in options if k != "node_name"}}
    return settings


def emulated_nodes(count: int) -> HostConfig:
    """``gswarm run --emulated --nodes N``: nodes ``emu0`` … with one pretend GPU each, 0.5 s apart."""
    if not 1 <= count <= 16:
        raise ConfigError(f"option --nodes: {count} must be from 1 to 16")
    return HostConfig(tuple(NodeConfig(f"emu{i}", gpus=(i,)) for i in range(count)), stagger=0.5)
