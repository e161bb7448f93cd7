"""One sampler per gateway, fanned out to any number of watchers.

The sampler runs only while someone watches the stream; a snapshot request between runs gets a
cached sample no older than `interval`, else a fresh one. Sampling (NVML, psutil) happens in a
worker thread so the event loop never waits on a driver.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from traitlets import Float, validate
from traitlets.config import LoggingConfigurable

from .devices import DeviceBackend
from .devices.host import host_sample, process_tree, tree_rss
from .settings import at_least

MIN_INTERVAL = 0.05  # seconds: below this the sampler would keep a core busy


class MetricsSampler(LoggingConfigurable):
    interval = Float(1.0, config=True, help="Seconds between metric samples while watched.")

    @validate("interval")
    def _check_interval(self, proposal):
        return at_least(self, proposal, MIN_INTERVAL, "seconds")

    def __init__(self, backend: DeviceBackend, kernel_manager, workspace: str, **kwargs):
        super().__init__(**kwargs)
        self.backend = backend
        self.km = kernel_manager
        self.workspace = workspace
        self.samples_taken = 0
        self._watchers: set[Callable[[dict], None]] = set()
        self._cache: tuple[float, dict] | None = None
        self._task: asyncio.Task | None = None
        self._inflight: asyncio.Future | None = None

    # -- sampling ---------------------------------------------------------------------------

    def _kernels(self) -> list[tuple[str, int | None, list[int]]]:
        alloc = getattr(self.km, "allocator", None)
        return [
            (kid, self.km.kernel_pid(kid), alloc.assigned(kid) if alloc else [])
            for kid in self.km.list_kernel_ids()
        ]

    def collect(self, kernels: list[tuple[str, int | None, list[int]]]) -> dict:
        """One sample (blocking). kernels: (id, pid, devices) of each kernel."""
        per_pid = self.backend.processes()
        out = []
        for kid, pid, devices in kernels:
            procs = process_tree(pid) if pid else []
            gpu = sum(sum(per_pid.get(p.pid, {}).values()) for p in procs)
            out.append({"id": kid, "rss": tree_rss(procs), "gpu_memory": gpu, "devices": devices})
        self.samples_taken += 1
        return {
            "time": time.time(),
            "devices": [s.to_dict() for s in self.backend.sample()],
            "host": host_sample(self.workspace),
            "kernels": out,
        }

    async def _sample(self) -> dict:
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(asyncio.to_thread(self.collect, self._kernels()))
        inflight = self._inflight
        try:
            sample = await asyncio.shield(inflight)
        finally:
            if self._inflight is inflight and inflight.done():
                self._inflight = None
        self._cache = (time.monotonic(), sample)
        return sample

    async def snapshot(self) -> dict:
        """The latest sample if fresher than `interval`, else a new one."""
        if self._cache and time.monotonic() - self._cache[0] < self.interval:
            return self._cache[1]
        return await self._sample()

    # -- watchers ---------------------------------------------------------------------------

    def watch(self, callback: Callable[[dict], None]) -> None:
        """Call `callback(sample)` once per interval until unwatch; starts the sampler if idle."""
        self._watchers.add(callback)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        elif self._cache:
            callback(self._cache[1])  # a new watcher sees the latest sample at once

    def unwatch(self, callback) -> None:
        self._watchers.discard(callback)

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    async def _run(self) -> None:
        while self._watchers:
            started = time.monotonic()
            try:
                sample = await self._sample()
            except Exception:
                self.log.exception("Metrics sample failed")
                sample = None
            for cb in list(self._watchers):
                if sample is None:
                    break
                try:
                    cb(sample)
                except Exception as e:
                    self.log.debug("Dropping a metrics watcher: %s", e)
                    self._watchers.discard(cb)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
