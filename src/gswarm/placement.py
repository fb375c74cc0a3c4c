"""Where each node of a host runs, without editing its checkout (issue #15 point 2).

:func:`place` turns the top-level Settings and a :class:`~gswarm.config.nodes.HostConfig` into one
:class:`Placement` per node; :func:`apply` writes a placement into a LaunchSpec before each start.

RL Swarm facts used (generations.md and the real source):

* GPUs: the node sees only ``CUDA_VISIBLE_DEVICES`` (any generation; torch/vLLM honour it).
* p2p: E0-E2 listen where ``--host_maddr`` says (``hivemind_exp/runner/grpo_runner.py`` v0.3.0:
  ``GRPOArguments.host_maddr``; the GPU YAMLs fix ``/ip4/0.0.0.0/tcp/38331`` and a flag given on argv
  overrides the YAML through TrlParser); the script reads ``HOST_MULTI_ADDRS`` (§3-§5 "Env").
  E3-E6 bind ``/ip4/0.0.0.0/tcp/0`` + ``udp/0/quic`` (genrl hard-codes them, §6 "Ports"): random ports
  that never collide and cannot be told, so nothing is set.
* Identity: E0-E2 ``--identity_path``, E3-E6 env ``IDENTITY_PATH`` (both from ``settings.identity_path``).
  The first node of a checkout keeps ``<checkout>/swarm.pem`` (its peer ID does not change); a further
  node sharing that checkout gets ``<state_dir>/nodes/<name>/swarm.pem``.
* modal-login: port 3000 is hard-coded in E1/E2 Python (``http://localhost:3000/api/``); E3-E6 read the
  Hydra key ``blockchain.modal_proxy_url`` (v0.7.0 ``code_gen_exp/config/code-gen-swarm.yaml``), which a
  ``key=value`` override on the launcher's argv changes (direct mode only; the script builds its own argv).
  So a second account (another login server) is possible on E3-E6 in direct mode only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from gswarm.config import Settings
from gswarm.config.nodes import HostConfig, node_settings
from gswarm.errors import ConfigError
from gswarm.supervisor.spec import LaunchSpec

HIVEMIND = ("E0", "E1", "E2")
GENRL = ("E3", "E4", "E5", "E6")
LOG_ROOT_GENERATIONS = ("E4", "E5", "E6")  # log_dir: ${oc.env:ROOT,.}/logs (v0.6.0 rg-swarm.yaml, v0.7.0 code-gen-swarm.yaml)


@dataclass(frozen=True)
class Placement:
    """One node's place on the host. ``cuda`` is the CUDA_VISIBLE_DEVICES value (None: not set, the node
    sees every GPU; "" = CPU only); ``p2p_port`` None for E3-E6 (random ports); ``modal_port`` the port of
    the account's login server; ``shares_checkout`` the other nodes on the same checkout; ``settings``
    the node's effective Settings (identity_path, modal_port and node_name set); ``log_root`` the ``ROOT``
    given to an E4-E6 node sharing its checkout (its Hydra ``log_dir`` is ``${oc.env:ROOT,.}/logs``), else None."""

    node: str
    checkout: Path
    generation: str
    gpus: tuple[int, ...] | None
    p2p_port: int | None
    identity_path: Path
    account: str
    modal_port: int
    shares_checkout: tuple[str, ...]
    settings: Settings
    log_root: Path | None = None

    @property
    def cuda(self) -> str | None:
        return None if self.gpus is None else ",".join(str(g) for g in self.gpus)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: node, checkout, generation, gpus, cuda_visible_devices, p2p, identity_path, account,
        modal_port, shares_checkout, log_dir (where the node's own log files go)."""
        p2p = f"tcp/{self.p2p_port}" if self.p2p_port else "random (genrl binds tcp/0 and udp/0/quic)"
        return {"node": self.node, "checkout": str(self.checkout), "generation": self.generation,
                "gpus": list(self.gpus) if self.gpus is not None else None, "cuda_visible_devices": self.cuda,
                "p2p": p2p, "p2p_port": self.p2p_port, "identity_path": str(self.identity_path),
                "account": self.account, "modal_port": self.modal_port, "shares_checkout": list(self.shares_checkout),
                "log_dir": str((self.log_root or self.checkout) / "logs")}


def nvml_gpu_count() -> int:
    """Number of NVIDIA GPUs NVML sees (0 without NVML or driver)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return int(pynvml.nvmlDeviceGetCount())
    except Exception:
        return 0


def place(base: Settings, host: HostConfig, state_dir: Path, *, detect: Callable[[Path], str] | None = None,
          gpu_count: Callable[[], int] = nvml_gpu_count) -> list[Placement]:
    """One Placement per node of ``host``. ``detect(checkout) -> generation`` defaults to
    :func:`gswarm.rlswarm.generations.detect`. Raises ConfigError naming the node (too few GPUs for
    "auto", two nodes on one identity or port, a second account where the generation cannot be told
    another modal-login port) and CheckoutError for a folder that is not a checkout."""
    configured = detect is None  # the real detection: a bad checkout's error names where rl_swarm_dir came from
    detect = detect or _detect
    nodes = host.nodes
    settings = [node_settings(base, n) for n in nodes]
    checkouts = [Path(s.rl_swarm_dir).expanduser().resolve() for s in settings]
    gpus = _auto_gpus(host, gpu_count)
    accounts = list(dict.fromkeys(n.account for n in nodes))
    out: list[Placement] = []
    seen_ident: dict[Path, str] = {}
    for i, (n, s, co) in enumerate(zip(nodes, settings, checkouts)):
        gen = _detect_configured(s, co) if configured else detect(co)
        first_on_checkout = checkouts.index(co) == i
        ident = Path(s.identity_path).expanduser() if s.identity_path else (
            co / "swarm.pem" if first_on_checkout else Path(state_dir) / "nodes" / n.name / "swarm.pem")
        if ident in seen_ident:
            raise ConfigError(f"nodes {seen_ident[ident]!r} and {n.name!r} both use identity {ident}: two nodes "
                              "would share one peer ID; give one its own identity_path")
        seen_ident[ident] = n.name
        acct = accounts.index(n.account)
        modal_port = s.modal_port + acct
        if acct and (gen not in GENRL or s.via_script):
            raise ConfigError(f"node {n.name!r}: account {n.account!r} needs its own modal-login port, and only E3-E6 "
                              f"in direct mode can be told one (Hydra blockchain.modal_proxy_url); this node is {gen}"
                              f"{' in script mode' if s.via_script else ''}: use the account of the other nodes")
        port = (n.p2p_port or host.p2p_base_port + i) if gen in HIVEMIND else None
        shares = tuple(m.name for m, c in zip(nodes, checkouts) if c == co and m.name != n.name)
        if shares and s.via_script:
            raise ConfigError(f"node {n.name!r} shares its checkout {co} with {', '.join(shares)} in script mode: "
                              "run_rl_swarm.sh deletes modal-login/temp-data/*.json on every exit and starts its own "
                              "modal-login on :3000 (generations.md §2.2); give it its own checkout or use direct mode")
        log_root = Path(state_dir) / "nodes" / n.name if shares and gen in LOG_ROOT_GENERATIONS else None
        s = s.model_copy(update={"identity_path": ident, "modal_port": modal_port})
        out.append(Placement(n.name, co, gen, gpus[i], port, ident, n.account, modal_port, shares, s, log_root))
    _check_ports(out)
    _check_scripts(out)
    return out


def _check_scripts(out: list[Placement]) -> None:
    """At most one script-mode node of a testnet generation (E1-E6) per host: each script starts its own
    modal-login on the hard-coded port 3000 (generations.md §2.4)."""
    scripted = [p.node for p in out if p.settings.via_script and p.generation not in ("E0", "unknown")]
    if len(scripted) > 1:
        raise ConfigError(f"nodes {', '.join(repr(n) for n in scripted)} all run run_rl_swarm.sh (script mode), and "
                          "each script starts modal-login on port 3000; run them in direct mode (via_script = false)")


def _detect_configured(settings: Settings, checkout: Path) -> str:
    from gswarm.rlswarm.launch import detect_configured

    return detect_configured(settings, checkout).generation


def _detect(checkout: Path) -> str:
    from gswarm.rlswarm.generations import detect

    return detect(checkout).generation


def _auto_gpus(host: HostConfig, gpu_count: Callable[[], int]) -> list[tuple[int, ...] | None]:
    """Each node's GPU tuple; "auto" nodes take the lowest GPU no node names, one each."""
    taken = {g for n in host.nodes if isinstance(n.gpus, tuple) for g in n.gpus}
    autos = [n.name for n in host.nodes if n.gpus == "auto"]
    free = [g for g in range(gpu_count() if autos else 0) if g not in taken]
    if len(free) < len(autos):
        raise ConfigError(f"gpus = \"auto\" for {', '.join(autos)} needs {len(autos)} free GPUs, NVML sees "
                          f"{len(free)} not already given to a node; list gpus per node or run fewer nodes")
    it = iter(free)
    return [(next(it),) if n.gpus == "auto" else n.gpus for n in host.nodes]  # type: ignore[misc]


def _check_ports(out: list[Placement]) -> None:
    used: dict[int, str] = {}
    for p in out:
        port = p.p2p_port
        if port is None:
            continue
        if port in used:
            raise ConfigError(f"nodes {used[port]!r} and {p.node!r} would both listen on p2p port {port}; "
                              "set p2p_port on one of them")
        used[port] = p.node


def apply(spec: LaunchSpec, p: Placement) -> LaunchSpec:
    """``spec`` with ``p`` written in: CUDA_VISIBLE_DEVICES; E0-E2 ``HOST_MULTI_ADDRS`` env and (direct mode)
    ``--host_maddr``; E4-E6 sharing a checkout: ``ROOT`` (own log folder); E3-E6 direct mode with a
    non-default account: the ``blockchain.modal_proxy_url`` Hydra override. The identity path already came in through ``settings.identity_path``."""
    env = dict(spec.env)
    argv = list(spec.argv)
    if p.cuda is not None:
        env["CUDA_VISIBLE_DEVICES"] = p.cuda
    if p.p2p_port is not None:
        maddr = f"/ip4/0.0.0.0/tcp/{p.p2p_port}"
        env["HOST_MULTI_ADDRS"] = maddr
        if spec.mode == "direct":
            if "--host_maddr" in argv[:-1]:
                argv[argv.index("--host_maddr") + 1] = maddr
            else:
                argv += ["--host_maddr", maddr]
    if p.log_root is not None and spec.mode == "direct":
        env["ROOT"] = str(p.log_root)  # this node's Hydra logs apart from the other nodes on the checkout
    if p.generation in GENRL and spec.mode == "direct" and p.modal_port != 3000:
        argv.append(f"blockchain.modal_proxy_url=http://localhost:{p.modal_port}/api/")
    return dataclasses.replace(spec, env=env, argv=tuple(argv))


def plan_nodes(base: Settings, host: HostConfig, state_dir: Path) -> dict[str, Any]:
    """``gswarm plan --json`` for a host: ``{"stagger": s, "nodes": [placement JSON + "launch": LaunchSpec
    JSON (masked env, placement applied) + "warnings"]}``. Raises what :func:`place` raises."""
    from gswarm.rlswarm.generations import detect
    from gswarm.rlswarm.launch import build_launch_spec
    from gswarm.rlswarm.options import inapplicable

    nodes = []
    for p in place(base, host, state_dir):
        det = detect(p.checkout)
        spec = apply(build_launch_spec(p.settings, p.checkout, detection=det, require_login=False), p)
        nodes.append(p.to_json() | {"launch": spec.to_json(), "warnings": inapplicable(p.settings, det.generation)})
    return {"stagger": host.stagger, "nodes": nodes}


GIB = 1024 ** 3


def fit_warnings(placements: list[Placement], host: HostConfig, ram_available: int,
                 gpu_free: dict[int, int]) -> list[str]:
    """Warnings (empty when everything fits) before starting ``placements``: host RAM ``ram_available``
    (bytes) below ``len(nodes) * host.node_ram_gb`` GiB; a placed GPU NVML does not list; a GPU with less than
    ``host.node_vram_gb`` GiB free (``gpu_free``: NVML index -> free bytes; checked only when NVML answered).
    Running more nodes than fit lets one node's out-of-memory ladder starve the others."""
    out: list[str] = []
    need = len(placements) * host.node_ram_gb * GIB
    if need > ram_available:
        fits = int(ram_available // (host.node_ram_gb * GIB)) if host.node_ram_gb else len(placements)
        out.append(f"{len(placements)} nodes need about {need / GIB:.0f} GiB of RAM ({host.node_ram_gb:g} GiB each, "
                   f"[host] node_ram_gb) but {ram_available / GIB:.1f} GiB is available: {fits} fit; run fewer nodes "
                   "or lower node_ram_gb if yours need less")
    if not gpu_free:
        return out
    for p in placements:
        for g in p.gpus or ():
            if g not in gpu_free:
                out.append(f"node {p.node!r}: GPU {g} does not exist (NVML lists {', '.join(map(str, sorted(gpu_free)))})")
            elif host.node_vram_gb and gpu_free[g] < host.node_vram_gb * GIB:
                out.append(f"node {p.node!r}: GPU {g} has {gpu_free[g] / GIB:.1f} GiB free, less than node_vram_gb "
                           f"{host.node_vram_gb:g} GiB")
    return out


def host_resources() -> tuple[int, dict[int, int]]:
    """(available RAM bytes from psutil, {GPU index: free VRAM bytes} from NVML or {} without NVML)."""
    import psutil

    free: dict[int, int] = {}
    try:
        import pynvml

        pynvml.nvmlInit()
        for i in range(pynvml.nvmlDeviceGetCount()):
            free[i] = int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).free)
    except Exception:
        free = {}
    return int(psutil.virtual_memory().available), free
