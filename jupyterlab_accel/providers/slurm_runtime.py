"""SLURM runtimes in the registry: cluster runtimes (templates) and the job runtimes of kernels.

`ClusterRuntime` is listed like any runtime (its kernel spec, accelerator, shape) but has no
gateway: `SlurmRuntimes.kernel_target` turns a kernel start on it into a new job
(`SlurmJobProvider`) and its `SlurmJobRuntime`, whose URL and token come from the job's private
connection file once it runs. A job ends when its kernel ends (the job's gateway then has no
kernel), when cancelled, or when the scheduler ends it; its runtime then reports why."""

from __future__ import annotations

import asyncio
import json
import secrets
import time

from tornado import web

from ..runtime import Runtime, RuntimeError_, check_url
from .base import ProviderError, RuntimeProvider, State
from .runtime import wait_state
from .slurm import ClusterShape, SlurmClusters, SlurmJobProvider, duration

JOBS_FILE = "slurm-jobs.json"
# Stands for "no gateway" (port 9 is discard; never contacted: health is the provider's).
NO_GATEWAY_URL = "http://127.0.0.1:9"


def kernel_spec_model(name: str) -> dict:
    """The spec the job's gateway offers (ipykernel's), listed before any job exists."""
    return {
        "name": name,
        "spec": {
            "argv": [],
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            "interrupt_mode": "signal",
            "env": {},
            "metadata": {},
        },
        "resources": {},
    }


class ClusterRuntime(Runtime):
    """A cluster runtime: a shape to submit; each kernel started on it gets its own job."""

    def __init__(self, shape: ClusterShape, slurm: SlurmRuntimes):
        clusters = slurm.clusters
        super().__init__(
            shape.name,
            NO_GATEWAY_URL,
            display_name=shape.display_name,
            price_per_hour=shape.price_per_hour,
        )
        self.shape, self.slurm = shape, slurm
        self.specs = {clusters.kernel_spec: kernel_spec_model(clusters.kernel_spec)}
        self.default_spec = clusters.kernel_spec
        # What the Change runtime type dialog sorts by (kernelspec metadata.accel); no gateway
        # answers for it, so its /api/accel features are those of no runtime.
        self.info = {
            "accelerator": shape.accelerator,
            "shape": shape.shape,
            "devices": [],
            "features": [],
            "provider": "slurm",
        }
        self.healthy, self.error = True, None

    async def check(self, *args, **kw) -> None:
        """Nothing to reach until a job runs: submit errors are reported at kernel start."""
        self.healthy, self.error = True, None

    def describe(self) -> str:
        s = self.shape
        parts = [f"partition {s.partition}" if s.partition else "default partition"]
        if s.gpus:
            parts.append(f"{s.gpus} GPU" + ("s" if s.gpus > 1 else ""))
        if s.cpus:
            parts.append(f"{s.cpus} CPUs")
        if s.memory:
            parts.append(f"{s.memory} memory")
        if s.time_limit:
            parts.append(f"time limit {s.time_limit}")
        return "SLURM: each notebook runs in its own job (" + ", ".join(parts) + ")"

    def public_model(self) -> dict:
        model = super().public_model()
        model["url"] = None
        model["accelerator"] = self.shape.accelerator.upper() if self.shape.gpus else "CPU"
        model["provider"] = {
            "kind": "slurm-cluster",
            "state": State.READY.value,
            "message": self.describe(),
            "step": None,
            "reason": None,
            "details": {
                "accelerator": self.shape.accelerator,
                "shape": self.shape.shape,
                "gpus": self.shape.gpus,
                "time_limit": self.shape.time_limit,
                "lifetime": self.shape.lifetime,
                "jobs": [
                    rt.name
                    for rt in self.slurm.job_runtimes()
                    if rt.provider.shape.name == self.name
                ],
            },
        }
        return model


class SlurmJobRuntime(Runtime):
    """The runtime of one job: reachable once the job's gateway has written its address."""

    def __init__(self, provider: SlurmJobProvider, display_name: str, reattach=None):
        super().__init__(
            provider.name,
            NO_GATEWAY_URL,
            display_name=display_name,
            price_per_hour=provider.price_per_hour,
        )
        self.provider = provider
        # A stored job is one whose kernel ran (one job per kernel): once the re-attached
        # gateway has none, the job ends, however soon after the restart that is.
        self.had_kernel = reattach is not None
        self._reattach = reattach  # a stored job: re-attached on first use (attached())
        self._reattaching = False
        self._follow(provider)
        provider.on_change(self._follow)

    def _follow(self, provider: RuntimeProvider) -> None:
        endpoint = provider.endpoint
        if endpoint is not None and check_url(endpoint.url) != self.url:
            self.close()  # the old client pointed at no gateway
            self.url = check_url(endpoint.url)
            self.set_token(endpoint.token)
        if provider.state is not State.READY:
            self.mark_unhealthy(f"{provider.state.value}: {provider.message}")
        else:
            self.checked_at = 0.0

    @property
    def ended(self) -> str | None:
        """Why the job ended (the scheduler's reason), or None while it is not over."""
        return self.provider.message if self.provider.state is State.STOPPED else None

    async def job_over(self, wait: float = 10) -> str | None:
        """For a relay whose link just dropped: why the job ended, if it did (the scheduler is
        asked at once; a job it still lists as running gets `wait` seconds to show its end)."""
        return await self.provider.ended_reason(wait)

    async def keepalive(self, kernel_id: str) -> dict:
        """Keep alive on a job: the gateway's idle timer is reset, but the job's time limit is
        the scheduler's and cannot be extended from here; the answer says so."""
        try:
            resp = await self.api(f"/api/accel/kernels/{kernel_id}/keepalive", "POST", body=b"")
            body = json.loads(resp.body) if resp.code == 200 and resp.body else {}
        except (OSError, ValueError, asyncio.TimeoutError):
            body = {}
        p = self.provider
        left = p.job.seconds_left() if p.job else None
        when = f" in {duration(left)}" if left is not None else ""
        return {
            **(body if isinstance(body, dict) else {}),
            "extended": False,
            "message": f"Kept alive while idle, but SLURM job {p.job_id} still ends{when}: a "
            "job's time limit is set at submission and cannot be extended. Save your work; "
            "a new session submits a new job.",
            "job": p.public_model()["details"],
        }

    async def attached(self, wait: float = 15) -> None:
        """A stored job re-attaches on first use; callers wait up to `wait` s for it."""
        if self._reattach is None:
            return
        if not self._reattaching:
            self._reattaching = True
            self._reattach()
        if wait > 0:
            await wait_state(self.provider, wait)
        if self.provider.state is not State.STARTING:
            self._reattach = None

    async def api(self, *args, **kw):
        await self.attached()
        return await super().api(*args, **kw)

    async def websocket_connect(self, *args, **kw):
        await self.attached()
        return await super().websocket_connect(*args, **kw)

    async def check(self, *args, **kw) -> None:
        await self.attached(0)
        if self.provider.state is not State.READY:
            self.healthy = False
            self.error = f"{self.provider.state.value}: {self.provider.message}"
            return
        await super().check(*args, **kw)

    def mark_unhealthy(self, error: str) -> None:
        # the scheduler's reason says more than "unreachable" once the job is over
        super().mark_unhealthy(self.ended or error)

    def public_model(self) -> dict:
        return {**super().public_model(), "provider": self.provider.public_model()}


class SlurmRuntimes:
    """The registry's SLURM part: cluster runtimes, their jobs, re-attach after a restart."""

    def __init__(self, registry):
        self.registry = registry
        self.clusters = SlurmClusters(parent=registry)
        self.log = registry.log
        self.shapes = self.clusters.shapes()
        self._watchers: dict[str, asyncio.Task] = {}

    def install(self) -> None:
        """Add the configured cluster runtimes and the jobs the last server left running."""
        for shape in self.shapes.values():
            try:
                self.registry._add(ClusterRuntime(shape, self))
            except RuntimeError_ as e:
                self.log.error("jupyterlab_accel: ignoring cluster runtime: %s", e)
        for rec in self.registry.state.read_json(JOBS_FILE, []):
            try:
                self._adopt(rec)
            except (KeyError, TypeError, RuntimeError_) as e:
                self.log.warning("jupyterlab_accel: ignoring stored SLURM job %r: %s", rec, e)

    def _adopt(self, rec: dict) -> None:
        shape = self.shapes.get(rec["cluster_runtime"])
        if shape is None:
            return
        provider = self.clusters.new_job(rec["name"], shape, str(rec["job_id"]))
        provider.set_status(State.STARTING, f"Re-attaching to SLURM job {provider.job_id}")

        def reattach():
            self._watchers[provider.name] = asyncio.ensure_future(self._run(rt, provider.reattach))

        rt = self._register(provider, shape, reattach)

    def _register(self, provider, shape: ClusterShape, reattach=None) -> SlurmJobRuntime:
        rt = SlurmJobRuntime(provider, f"{shape.display_name} · job", reattach)
        self.registry._add(rt)
        provider.on_change(self._changed)
        return rt

    def _changed(self, provider: SlurmJobProvider) -> None:
        self._save()
        if provider.state is State.STOPPED:  # listed a while with its reason, then dropped
            rt = self.registry.get(provider.name)
            if isinstance(rt, SlurmJobRuntime):
                asyncio.get_event_loop().call_later(
                    self.clusters.ended_linger, lambda: self.forget(rt)
                )

    def _save(self) -> None:
        records = [
            {
                "name": rt.name,
                "cluster_runtime": rt.provider.shape.name,
                "job_id": rt.provider.job_id,
            }
            for rt in self.job_runtimes()
            if rt.provider.job_id and rt.provider.state is not State.STOPPED
        ]
        try:
            self.registry.state.write_json(JOBS_FILE, records)
        except OSError as e:
            self.log.error("jupyterlab_accel: could not save SLURM jobs: %s", e)

    def job_runtimes(self) -> list[SlurmJobRuntime]:
        return [rt for rt in self.registry.all() if isinstance(rt, SlurmJobRuntime)]

    # -- a kernel start on a cluster runtime -----------------------------------------------
    async def kernel_target(self, kernel_name: str) -> str:
        """The kernel name to start: on a cluster runtime, the same spec on a new job."""
        from ..kernelspecs import parse_name, remote_name

        parsed = parse_name(kernel_name)
        if parsed is None:
            return kernel_name
        rt = self.registry.get(parsed[0])
        if not isinstance(rt, ClusterRuntime):
            return kernel_name
        name = f"{rt.name}-{secrets.token_hex(3)}"
        provider = self.clusters.new_job(name, rt.shape)
        job_rt = self._register(provider, rt.shape)
        self.log.info("jupyterlab_accel: kernel on cluster runtime %r: new job %r", rt.name, name)
        try:
            await self._run(job_rt, provider.start, watch=False)
        except ProviderError as e:
            self.forget(job_rt)
            status = 503 if e.reason != "cancelled" else 409
            raise web.HTTPError(status, f"Cluster runtime {rt.name!r}: {e}", reason=e.reason)
        self._watchers[name] = asyncio.ensure_future(self._watch_kernels(job_rt))
        return remote_name(name, parsed[1])

    async def _run(self, rt: SlurmJobRuntime, step, watch: bool = True) -> None:
        try:
            await step()
        except ProviderError as e:
            if not watch:
                raise
            # a stored job that ended while no server watched: listed with why, then dropped
            self.log.info("jupyterlab_accel: SLURM job runtime %r: %s", rt.name, e)
            return
        if watch:
            await self._watch_kernels(rt)

    async def _watch_kernels(self, rt: SlurmJobRuntime) -> None:
        """The job ends with its kernel: once the job's gateway had one and has none, cancel."""
        provider = rt.provider
        started = time.monotonic()
        while provider.state is State.READY:
            await asyncio.sleep(self.clusters.poll_interval)
            try:
                resp = await rt.api("/api/kernels", timeout=5)
                kernels = json.loads(resp.body) if resp.code == 200 else None
            except (OSError, ValueError, asyncio.TimeoutError):
                continue
            if not isinstance(kernels, list):
                continue
            if kernels:
                rt.had_kernel = True
            elif rt.had_kernel or time.monotonic() - started > self.clusters.ready_timeout:
                self.log.info(
                    "jupyterlab_accel: %s has no kernel left: cancelling its job", rt.name
                )
                left = provider.job.seconds_left() if provider.job else None
                if left is not None and left < 90:  # the gateway culled it at the time limit
                    why, reason = "it reached its time limit", "timeout"
                else:
                    why, reason = "its kernel ended", "kernel_ended"
                await provider.stop(f"SLURM job {provider.job_id} ended: {why}", reason)
                break

    async def cancel(self, rt: SlurmJobRuntime) -> None:
        """Cancel the job (pending or running); its kernel start or kernel ends with it."""
        await rt.provider.stop()

    def forget(self, rt: SlurmJobRuntime) -> None:
        task = self._watchers.pop(rt.name, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        if self.registry.get(rt.name) is rt:
            self.registry.remove(rt.name)
        self._save()
