"""/accel/providers/slurm/jobs: the cluster jobs kernels run in (list, cancel).

Thin over `providers.slurm_runtime.SlurmRuntimes`. A job's state, reason, queue position, node
and time left are its runtime's `provider` field (also in GET /accel/runtimes)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..providers.base import State
from ..providers.slurm_runtime import SlurmJobRuntime
from .base import AccelHandler


class SlurmJobsHandler(AccelHandler):
    @web.authenticated
    @authorized
    async def get(self):
        """Every job runtime: pending, running, or ended a short while ago (with why)."""
        for rt in self.registry.slurm.job_runtimes():
            await rt.attached(0)
        self.write_json([rt.public_model() for rt in self.registry.slurm.job_runtimes()])


class SlurmJobHandler(AccelHandler):
    def job_runtime(self, name: str) -> SlurmJobRuntime:
        rt = self.registry.get(name)
        if not isinstance(rt, SlurmJobRuntime):
            raise web.HTTPError(404, f"no cluster job runtime named {name!r}")
        return rt

    @web.authenticated
    @authorized
    async def get(self, name):
        rt = self.job_runtime(name)
        await rt.attached(0)  # a job adopted after a restart starts re-attaching now
        self.write_json(rt.public_model())

    @web.authenticated
    @authorized
    async def delete(self, name):
        """Cancel the job, pending or running (its kernel start fails / its kernel ends)."""
        rt = self.job_runtime(name)
        if rt.provider.state is not State.STOPPED:
            await self.registry.slurm.cancel(rt)
        self.write_json(rt.public_model())
