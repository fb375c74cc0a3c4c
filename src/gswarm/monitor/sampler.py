"""Resource sampling service: every ``settings.sample_interval`` seconds one ``ResourceSample``.

``ResourceSample.data`` keys match the ``samples`` table columns of the store
(``cpu_percent`` … ``gpu``, ``state_disk_free_bytes``) plus ``processes`` and
``pids`` (not stored). The node's pid comes from ``rt.snapshot()["pid"]`` (the
process-group leader GSwarm started). Measured cost: see ``bench/sampling.py``
(well under 1 % of one core at the 10 s period).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from gswarm import events as ev
from gswarm.monitor.gpu import GpuSampler
from gswarm.monitor.host import HostSampler, TreeSampler

log = logging.getLogger(__name__)


class Sampler:
    """Synchronous sampler: ``Sampler(checkout, state_dir, gpu=None, gpus=None).sample(pid) -> dict``.

    ``gpus``: the NVML indices of the node's own GPUs (one node per GPU on a host, issue #15); only those
    are reported. None = every GPU."""

    def __init__(self, checkout: Path | None = None, state_dir: Path | None = None, gpu: GpuSampler | None = None,
                 gpus: tuple[int, ...] | None = None) -> None:
        self.tree = TreeSampler()
        self.host = HostSampler(checkout, state_dir)
        self.gpu = gpu if gpu is not None else GpuSampler()
        self.gpus = gpus

    def sample(self, pid: int | None) -> dict[str, Any]:
        """Tree + host + GPU figures in one dict (units: percent, bytes, counts, °C, W)."""
        data = self.tree.sample(pid)
        data.update(self.host.sample())
        gpu = self.gpu.sample(data.get("pids") or ())
        data["gpu"] = gpu if self.gpus is None else [g for g in gpu if g.get("index") in self.gpus]
        return data


class SamplerService:
    """Service ``sampler``: publishes ``ResourceSample(node, ts, data)`` every ``interval`` seconds.

    ``pid_of()`` returns the node's current pid or None (stopped): host and GPU
    figures are still sampled then, the tree figures are None.
    """

    name = "sampler"

    def __init__(self, bus: ev.EventBus, clock: Any, node: str, pid_of: Callable[[], int | None],
                 sampler: Sampler, interval: float = 10.0) -> None:
        self.bus, self.clock, self.node, self.pid_of = bus, clock, node, pid_of
        self.sampler, self.interval = sampler, interval

    def sample_once(self) -> ev.ResourceSample:
        """Take one sample and publish it."""
        try:
            pid = self.pid_of()
        except Exception:
            pid = None
        sample = ev.ResourceSample(self.node, self.clock.time(), self.sampler.sample(pid))
        self.bus.publish(sample)
        return sample

    async def run(self) -> None:
        """Sample until cancelled; a failing sample is logged and skipped."""
        try:
            while True:
                try:
                    self.sample_once()
                except Exception:
                    log.exception("resource sampling failed")
                await self.clock.sleep(self.interval)
        finally:
            self.sampler.gpu.close()


def create_service(rt: Any) -> SamplerService:
    """Factory for the runtime: pid from ``rt.snapshot()``, period ``settings.sample_interval`` (s)."""
    spec = getattr(rt, "spec", None)
    checkout = Path(spec.cwd) if spec is not None else Path(getattr(rt, "checkout", None) or rt.settings.rl_swarm_dir)
    placement = getattr(rt, "placement", None)  # one node of several: only its own GPUs
    sampler = Sampler(checkout, Path(rt.state_dir), gpus=getattr(placement, "gpus", None))
    return SamplerService(rt.bus, rt.clock, rt.node, lambda: rt.snapshot().get("pid"), sampler,
                          interval=rt.settings.sample_interval)
