"""NVIDIA GPUs through NVML (nvidia-ml-py), optional.

No library, no driver or no GPU is not an error: :meth:`GpuSampler.sample` returns
``[]`` and the reason is logged once at debug level. NVML is initialised once and
kept; each figure is read separately so one unsupported query (e.g. power on a
laptop GPU) only blanks that figure.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

log = logging.getLogger(__name__)


class GpuSampler:
    """Per-GPU readings.

    ``sample(pids)`` → ``[{"index": int, "name": str, "uuid": str, "utilization_percent": int,
    "memory_used_bytes": int, "memory_total_bytes": int, "temperature_celsius": int,
    "power_watts": float, "node_memory_bytes": int}]`` where ``node_memory_bytes`` is the
    GPU memory used by the processes in ``pids`` (the node's tree). ``nvml`` is the
    ``pynvml`` module by default (a stand-in with the same functions in tests).
    """

    def __init__(self, nvml: Any = None) -> None:
        self._nvml = nvml
        self._ready: bool | None = None
        self.reason = ""

    def _init(self) -> bool:
        if self._ready is None:
            try:
                if self._nvml is None:
                    import pynvml as nvml
                    self._nvml = nvml
                self._nvml.nvmlInit()
                self._ready = True
            except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, DriverNotLoaded…
                self._ready = False
                self.reason = f"{type(exc).__name__}: {exc}"
                log.debug("no NVIDIA GPU readings: %s", self.reason)
        return self._ready

    def close(self) -> None:
        """Release NVML."""
        if self._ready:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
        self._ready = None

    def _get(self, fn: str, *args: Any) -> Any:
        try:
            return getattr(self._nvml, fn)(*args)
        except Exception:
            return None

    def sample(self, pids: Iterable[int] = ()) -> list[dict[str, Any]]:
        """One reading of every GPU (see class doc); ``[]`` without NVML."""
        if not self._init():
            return []
        count = self._get("nvmlDeviceGetCount") or 0
        wanted = set(pids)
        return [self._one(i, wanted) for i in range(count)]

    def _one(self, index: int, pids: set[int]) -> dict[str, Any]:
        nv = self._nvml
        h = self._get("nvmlDeviceGetHandleByIndex", index)
        util = self._get("nvmlDeviceGetUtilizationRates", h)
        mem = self._get("nvmlDeviceGetMemoryInfo", h)
        temp = self._get("nvmlDeviceGetTemperature", h, getattr(nv, "NVML_TEMPERATURE_GPU", 0))
        power = self._get("nvmlDeviceGetPowerUsage", h)
        name = self._get("nvmlDeviceGetName", h)
        uuid = self._get("nvmlDeviceGetUUID", h)
        used = 0
        for fn in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            for proc in self._get(fn, h) or []:
                if proc.pid in pids and proc.usedGpuMemory:
                    used += int(proc.usedGpuMemory)
        return {
            "index": index, "name": _text(name), "uuid": _text(uuid),
            "utilization_percent": util.gpu if util is not None else None,
            "memory_used_bytes": int(mem.used) if mem is not None else None,
            "memory_total_bytes": int(mem.total) if mem is not None else None,
            "temperature_celsius": temp, "power_watts": round(power / 1000.0, 1) if power is not None else None,
            "node_memory_bytes": used,
        }


def _text(v: Any) -> str | None:
    return v.decode() if isinstance(v, bytes) else v
