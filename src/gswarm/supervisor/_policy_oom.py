"""The out-of-memory ladder of the restart policy (private helper of ``policy.py``, failures area).

State lives in ``History.extra["oom"]`` as plain data (JSON-ready):
``{"alloc": bool, "model": str|None, "size": str|None, "steps": [{"ts", "kind", "detail", "env"}], "since": ts}``.
Rungs, in order: (1) the allocator setting for the device — CUDA ``PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True``,
Apple ``PYTORCH_MPS_HIGH_WATERMARK_RATIO=0.0`` (README workaround; generations.md §10); none for RAM (system OOM);
(2+) the next smaller model of the generation's pool (E3-E6 via env MODEL_NAME) or the next smaller E2
parameter count. The allocator setting, once applied, is kept (it costs nothing); stepping back up restores
the previous model size.

The model rung starts from the model the node itself reported in its last run: ``History.extra["model_in_use"]``
(str), filled by ``gswarm.monitor.progress`` from the trainer's "Using Model: <hf id>" line (E3 genrl-swarm,
E4/E5 ``rgym_exp``, E6 ``code_gen_exp``; generations.md §6.6, §7.6, §9.6) and cleared at every start. Without
``MODEL_NAME`` E4-E6 pick the model at random per start (§7.4, §9.4), so neither the settings nor the ladder's
own state know it. When the node already runs the smallest model of the pool, the rung is skipped (the ladder is
exhausted) instead of restarting with the same model. E0-E2 have no such line and are unaffected.
"""

from __future__ import annotations

from typing import Any

from gswarm.events import Category

ALLOC_ENV = {
    "cuda": {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"},
    "mps": {"PYTORCH_MPS_HIGH_WATERMARK_RATIO": "0.0"},
}
# Largest first. Sources: generations.md §7 (E4 random pick: >= 40 GiB VRAM one of the first three,
# otherwise the last two; E3/E5 use the same rgym pool) and §9 (E6 solver models).
_RGYM = ("dnotitia/Smoothie-Qwen3-1.7B", "nvidia/AceInstruct-1.5B", "Gensyn/Qwen2.5-1.5B-Instruct",
         "Qwen/Qwen3-0.6B", "Gensyn/Qwen2.5-0.5B-Instruct")
MODEL_POOLS: dict[str, tuple[str, ...]] = {
    "E3": _RGYM, "E4": _RGYM, "E5": _RGYM,
    "E6": ("Qwen/Qwen2.5-Coder-1.5B-Instruct", "deepseek-ai/deepseek-coder-1.3b-instruct", "Qwen/Qwen2.5-Coder-0.5B-Instruct"),
}
E2_SIZES = ("72", "32", "7", "1.5", "0.5")  # generations.md §5 prompt P3, billions of parameters
DEVICE = {Category.CUDA_OOM: "cuda", Category.MPS_OOM: "mps", Category.SYSTEM_OOM_KILLED: "ram"}
IN_USE = "model_in_use"  # History.extra key, written by gswarm.monitor.progress


def model_in_use(history_extra: dict[str, Any], generation: str) -> str | None:
    """The model the last run named ("Using Model: <hf id>", E3-E6, generations.md §6.6/§9.6), for generations
    with a model pool only (E0-E2 choose by config / parameter count); None when not reported."""
    model = history_extra.get(IN_USE)
    return model if generation in MODEL_POOLS and isinstance(model, str) and model else None


def state(history_extra: dict[str, Any], settings: Any) -> dict[str, Any]:
    """The ladder state, created from the configured model the first time."""
    st = history_extra.get("oom")
    if st is None:
        model = getattr(settings, "model_name", None)
        st = {"alloc": False, "model": model, "configured": model,
              "size": str(getattr(settings, "model_size", "0.5") or "0.5"), "steps": [], "since": None}
        history_extra["oom"] = st
    return st


def current_env(st: dict[str, Any] | None, generation: str) -> dict[str, str]:
    """Environment the ladder imposes on every start (allocator settings + MODEL_NAME)."""
    env: dict[str, str] = {}
    if not st:
        return env
    for step in st["steps"]:
        if step["kind"] == "alloc":
            env.update(step["env"])
    if st.get("model") and st["model"] != st.get("configured") and generation in MODEL_POOLS:
        env["MODEL_NAME"] = st["model"]
    return env


def _smaller(pool: tuple[str, ...], cur: str | None) -> str | None:
    """The next smaller model of ``pool`` after ``cur``; the smallest when ``cur`` is unknown or not in the
    pool; None when ``cur`` already is the smallest."""
    if cur not in pool:
        return pool[-1]
    i = pool.index(cur) + 1
    return pool[i] if i < len(pool) else None


def step_down(st: dict[str, Any], device: str, generation: str, now: float,
              in_use: str | None = None) -> dict[str, Any] | None:
    """Apply the next rung; returns the recorded step, or None when the ladder is exhausted.

    ``in_use``: the model the node reported in the run that just failed (see :func:`model_in_use`); it wins over
    the ladder's own idea (``st["model"]``: configured or last imposed), which is None for a default pick.
    """
    if device in ALLOC_ENV and not st["alloc"]:
        st["alloc"] = True
        step = {"ts": now, "kind": "alloc", "env": dict(ALLOC_ENV[device]),
                "detail": "restart with " + " ".join(f"{k}={v}" for k, v in ALLOC_ENV[device].items())}
    elif generation in MODEL_POOLS:
        cur = in_use or st.get("model")
        nxt = _smaller(MODEL_POOLS[generation], cur)
        if nxt is None:
            return None
        was = cur or "the default pick, not named in the output"
        step = {"ts": now, "kind": "model", "env": {"MODEL_NAME": nxt}, "prev": cur,
                "detail": f"restart with the smaller model {nxt} (MODEL_NAME; was {was})"}
        st["model"] = nxt
    elif generation == "E2" and st.get("size") in E2_SIZES[:-1]:
        nxt = E2_SIZES[E2_SIZES.index(st["size"]) + 1]
        step = {"ts": now, "kind": "size", "env": {}, "prev": st["size"], "size": nxt,
                "detail": f"restart with {nxt}B parameters (was {st['size']}B)"}
        st["size"] = nxt
    else:
        return None
    st["steps"].append(step)
    st["since"] = now
    return step


def exhausted(st: dict[str, Any], generation: str, in_use: str | None = None) -> str:
    """Why no rung is left, naming the model/size in use (for the stop or restart reason)."""
    cur = in_use or st.get("model")
    if generation in MODEL_POOLS and cur == MODEL_POOLS[generation][-1]:
        how = "the node's 'Using Model:' line" if in_use else "MODEL_NAME"
        return f"out of memory with {cur} ({how}), already the smallest model GSwarm can choose for {generation}"
    if generation == "E2" and st.get("size") == E2_SIZES[-1]:
        return f"out of memory at {E2_SIZES[-1]}B parameters, the smallest E2 setting"
    return "out of memory at the smallest setting GSwarm can choose"


def step_up(st: dict[str, Any], generation: str, now: float) -> dict[str, Any] | None:
    """Undo the last model/size rung (not the allocator setting); None if there is none."""
    last = next((s for s in reversed(st["steps"]) if s["kind"] in ("model", "size")), None)
    if last is None:
        return None
    if last["kind"] == "size":
        up = {"ts": now, "kind": "size_up", "env": {}, "size": last["prev"],
              "detail": f"stable: back up to {last['prev']}B parameters"}
        st["size"] = last["prev"]
    else:
        pool = MODEL_POOLS.get(generation, ())
        cur = last["env"]["MODEL_NAME"]
        prev = last.get("prev") or (pool[pool.index(cur) - 1] if cur in pool[1:] else None)
        if prev is None:
            return None
        up = {"ts": now, "kind": "model_up", "env": {"MODEL_NAME": prev}, "detail": f"stable: back up to the model {prev}"}
        st["model"] = prev
    st["steps"].remove(last)
    st["since"] = now
    return up
