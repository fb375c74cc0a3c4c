"""What the real ``run_rl_swarm.sh`` exports to the trainer, and where GSwarm's launch differs (private).

Verified against the scripts of the tags named in :data:`SOURCE` (``git show <tag>:run_rl_swarm.sh``;
generations.md §3-§9, §12). ``MODEL_NAME`` (E3-E6) is exported only when the model prompt got a
non-empty answer. :func:`env_exceptions` gives the written reason for every variable GSwarm sets
differently, adds or leaves out; ``gswarm plan --json`` shows both lists.
"""

from __future__ import annotations

from typing import Any

_HIVEMIND = ("PUB_MULTI_ADDRS", "PEER_MULTI_ADDRS", "HOST_MULTI_ADDRS", "IDENTITY_PATH")
_TESTNET = _HIVEMIND + ("CONNECT_TO_TESTNET", "ORG_ID", "HF_HUB_DOWNLOAD_TIMEOUT")
_GENRL = ("IDENTITY_PATH", "GENSYN_RESET_CONFIG", "CONNECT_TO_TESTNET", "ORG_ID", "HF_HUB_DOWNLOAD_TIMEOUT",
          "SWARM_CONTRACT", "HUGGINGFACE_ACCESS_TOKEN")

LAUNCHER_ENV: dict[str, tuple[str, ...]] = {
    "E0": _HIVEMIND,
    "E1": _TESTNET,  # CONNECT_TO_TESTNET True/False
    "E2": _TESTNET,  # CONNECT_TO_TESTNET true/false (lowercase from v0.4.0)
    "E3": _GENRL,
    "E4": _GENRL,
    "E5": _GENRL + ("PRG_CONTRACT", "PRG_GAME"),
    "E6": _GENRL,
}
"""generation → names ``run_rl_swarm.sh`` exports to the trainer (besides the conditional ``MODEL_NAME``)."""

SOURCE = {"E0": "v0.1.0", "E1": "v0.3.2", "E2": "v0.4.4", "E3": "v0.5.1", "E4": "v0.5.8", "E5": "v0.6.4", "E6": "v0.7.0"}
"""generation → the rl-swarm tag whose ``run_rl_swarm.sh`` the table above was checked against."""

_ADDED = {
    "PYTHONUNBUFFERED": "GSwarm's addition: line-timely output through the pipe (the script runs Python on a terminal)",
    "HF_TOKEN": "GSwarm passes the Hugging Face token by environment so huggingface_hub authenticates downloads",
}


def env_exceptions(generation: str, mode: str, env: dict[str, str], token: bool) -> list[dict[str, str]]:
    """Written exceptions to launcher parity for a spec of ``generation`` in ``mode`` with environment ``env``.

    ``token``: a Hugging Face token is configured. Returns ``[{"name", "why"}]`` (possibly empty).
    """
    out: list[dict[str, str]] = []
    marker = {"name": "GSWARM_RUN_MARKER", "why": "added to every process GSwarm starts: the per-run ownership "
              "marker that proves a process is GSwarm's before it is signalled"}
    if mode == "script":
        out.append({"name": "GSWARM_*", "why": "script mode: GSwarm's own variables (e.g. GSWARM_HF_TOKEN) are removed "
                    "from the environment the script inherits (except the run marker below); the script sets its "
                    "exports itself"})
        out.append({"name": "MODEL_NAME", "why": "script mode: never inherited (read -p would export it empty); "
                    "GSwarm answers the model prompt instead (E3-E6)"})
        if token and generation in ("E1", "E2", "E3", "E4", "unknown"):
            out.append({"name": "HF_TOKEN", "why": "the E1-E4 script reads HF_TOKEN and skips its Hugging Face prompt"})
        return out + [marker]
    for name, why in _ADDED.items():
        if name in env and name not in LAUNCHER_ENV.get(generation, ()):
            out.append({"name": name, "why": why})
    if generation in ("E1", "E2") and token:
        out.append({"name": "HUGGINGFACE_ACCESS_TOKEN", "why": "E1/E2 scripts pass the token on argv (--hf_token T, "
                    "visible in ps); GSwarm passes --hf_token None and the token by environment"})
    if generation == "E6" and token:
        out.append({"name": "HF_TOKEN", "why": "the E6 script runs `hf auth logout` and unsets HF_TOKEN when that "
                    "fails; GSwarm keeps it for downloads"})
    return out + [marker]


def launcher_env(generation: str, env: dict[str, str]) -> dict[str, Any]:
    """``{name: value in env or None}`` for every name the real launcher exports (MODEL_NAME when set)."""
    names = LAUNCHER_ENV.get(generation, ())
    out: dict[str, Any] = {n: env.get(n) for n in names}
    if "MODEL_NAME" in env:
        out["MODEL_NAME"] = env["MODEL_NAME"]
    return out
