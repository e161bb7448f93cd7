"""Mapping kernel manager: local kernels as stock jupyter_server, namespaced kernels on their
runtime over REST. The kernel -> runtime map is persisted (0600), so a restarted server
re-attaches to remote kernels that are still running.

Remote kernels outlive this server on purpose (shutdown_all stops local kernels only): their
runtime culls them when idle."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

from jupyter_core.utils import ensure_async
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Float, Instance, default

from .kernelspecs import parse_name
from .remote_kernel import RemoteKernel, _now_iso, upstream_error
from .runtimes import RuntimeRegistry
from .state import AccelState

MAP_FILE = "kernels.json"


class AccelMappingKernelManager(AsyncMappingKernelManager):
    """Routes each kernel to its runtime; remembers which runtime every kernel is on."""

    registry = Instance(RuntimeRegistry)
    start_timeout = Float(120, config=True, help="Seconds a runtime may take to start a kernel.")
    action_timeout = Float(
        60, config=True, help="Seconds a runtime may take to restart, interrupt or stop a kernel."
    )
    model_timeout = Float(
        2,
        config=True,
        help="Seconds to wait for a runtime when listing kernels; an "
        "unreachable runtime's kernels keep their last known state.",
    )

    @default("registry")
    def _default_registry(self):
        ksm_registry = getattr(self.kernel_spec_manager, "registry", None)
        return ksm_registry if ksm_registry is not None else RuntimeRegistry(parent=self)

    def __init__(self, **kw):
        super().__init__(**kw)
        self._remote: dict[str, RemoteKernel] = {}
        self._state = AccelState(parent=self)
        for kid, rec in self._state.read_json(MAP_FILE, {}).items():
            rt = self.registry.get(rec.get("runtime", ""))
            if rt is None or rt.embedded:  # the embedded gateway died with the last server
                continue
            self._remote[kid] = self._remote_kernel(
                kid, rt, rec["remote_spec"], rec["kernel_name"], rec.get("started", "")
            )
            self._kernel_connections[kid] = 0
        if self._remote:
            self.log.info(
                "jupyterlab_accel: re-attaching to %d remote kernel(s)", len(self._remote)
            )
        self._save()

    def _remote_kernel(self, kid, rt, spec, name, started) -> RemoteKernel:
        return RemoteKernel(
            parent=self,
            kernel_id=kid,
            kernel_name=name,
            remote_spec=spec,
            runtime=rt,
            http=self.registry.http,
            started=started,
        )

    def _save(self) -> None:
        self._state.write_json(MAP_FILE, {k: rk.record() for k, rk in self._remote.items()})

    def _forget(self, kid: str) -> None:
        if self._remote.pop(kid, None) is not None:
            self._kernel_connections.pop(kid, None)
            self._save()

    # -- lookups jupyter_server relies on ---------------------------------------------
    def __contains__(self, kernel_id) -> bool:
        return kernel_id in self._remote or super().__contains__(kernel_id)

    def list_kernel_ids(self):
        return [*super().list_kernel_ids(), *self._remote]

    def get_kernel(self, kernel_id):
        if kernel_id in self._remote:
            return self._remote[kernel_id]
        return super().get_kernel(kernel_id)

    def remote_kernel(self, kernel_id) -> RemoteKernel | None:
        return self._remote.get(kernel_id)

    def remote_kernels(self) -> dict[str, RemoteKernel]:
        return dict(self._remote)

    def remove_kernel(self, kernel_id):
        if kernel_id in self._remote:
            rk = self._remote[kernel_id]
            self._forget(kernel_id)
            return rk
        return super().remove_kernel(kernel_id)

    def update_env(self, *, kernel_id, env):
        """A remote kernel's environment is fixed at start (a session rename changes nothing)."""
        if kernel_id not in self._remote:
            super().update_env(kernel_id=kernel_id, env=env)

    # -- lifecycle ----------------------------------------------------------------------
    async def start_kernel(self, *, kernel_id=None, path=None, **kwargs):
        name = kwargs.get("kernel_name") or self.default_kernel_name
        if kernel_id is not None and kernel_id in self:
            self.log.info("Using existing kernel: %s", kernel_id)
            return kernel_id
        parsed = parse_name(name)
        if parsed is None:
            return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
        return await self._start_remote(parsed[0], parsed[1], name, kwargs.get("env") or {})

    _async_start_kernel = start_kernel

    async def _start_remote(self, runtime: str, spec: str, name: str, env: dict) -> str:
        rt = self.registry.get(runtime)
        if rt is None:
            raise web.HTTPError(404, f"No such runtime: {runtime!r} (kernel {name!r})")
        await self.registry.check(rt)
        if not rt.healthy:
            raise web.HTTPError(503, f"runtime {runtime!r} is unavailable: {rt.error}")
        if spec not in rt.specs:
            raise web.HTTPError(404, f"runtime {runtime!r} has no kernel spec {spec!r}")
        # Stock gateways forward KERNEL_* variables only; the rest of our env stays here.
        body = {"name": spec, "env": {k: v for k, v in env.items() if k.startswith("KERNEL_")}}
        try:
            resp = await rt.fetch(
                self.registry.http, "/api/kernels", "POST", body=body, timeout=self.start_timeout
            )
        except OSError as e:
            rt.mark_unhealthy(f"unreachable: {e}")
            raise web.HTTPError(503, f"runtime {runtime!r} is unreachable: {e}") from None
        if resp.code not in (200, 201):
            raise upstream_error(resp, f"runtime {runtime!r} could not start {spec!r}")
        model = json.loads(resp.body)
        kid = model["id"]
        rk = self._remote_kernel(kid, rt, spec, name, _now_iso())
        rk.update(model)
        self._remote[kid] = rk
        self._kernel_connections[kid] = 0
        self._save()
        self.log.info("Kernel started: %s on runtime %r (%s)", kid, runtime, spec)
        if not self._initialized_culler:
            self.initialize_culler()
        return kid

    async def shutdown_kernel(self, kernel_id, now=False, restart=False):
        rk = self._remote.get(kernel_id)
        if rk is None:
            return await super().shutdown_kernel(kernel_id, now=now, restart=restart)
        await rk.shutdown(self.action_timeout)
        self._forget(kernel_id)
        self.log.info("Kernel shut down: %s on runtime %r", kernel_id, rk.rt.name)

    _async_shutdown_kernel = shutdown_kernel

    async def restart_kernel(self, kernel_id, now=False, **kw):
        rk = self._remote.get(kernel_id)
        if rk is None:
            return await super().restart_kernel(kernel_id, now=now)
        await rk.restart(self.action_timeout)

    _async_restart_kernel = restart_kernel

    async def interrupt_kernel(self, kernel_id, **kw):
        rk = self._remote.get(kernel_id)
        if rk is None:
            return await ensure_async(super().interrupt_kernel(kernel_id))
        await rk.interrupt(self.action_timeout)

    _async_interrupt_kernel = interrupt_kernel

    async def shutdown_all(self, now=False):
        """Local kernels only: remote kernels are re-attached by the next server."""
        kids = list(self._kernels) + [k for k in self._pending_kernels if k not in self._remote]
        await asyncio.gather(
            *(
                super(AccelMappingKernelManager, self).shutdown_kernel(k, now=now)
                for k in set(kids)
            ),
            return_exceptions=True,
        )

    _async_shutdown_all = shutdown_all

    async def shutdown_runtime_kernels(self, runtime: str) -> None:
        for kid, rk in list(self._remote.items()):
            if rk.rt.name == runtime:
                try:
                    await self.shutdown_kernel(kid)
                except web.HTTPError as e:
                    self.log.warning("jupyterlab_accel: %s", e.log_message)
                    self._forget(kid)

    # -- models -----------------------------------------------------------------------
    async def kernel_model(self, kernel_id):
        rk = self._remote.get(kernel_id)
        if rk is None:
            return super().kernel_model(kernel_id)
        await rk.refresh(self.model_timeout)
        if rk.gone:
            self._forget(kernel_id)
            raise web.HTTPError(404, f"Kernel does not exist: {kernel_id}")
        return dict(rk.model, connections=self._kernel_connections.get(kernel_id, 0))

    async def kernel_gone(self, kernel_id) -> bool:
        """True when a remote kernel no longer exists on its runtime (drops it from the map)."""
        rk = self._remote.get(kernel_id)
        if rk is None:
            return kernel_id not in self
        await rk.refresh(self.model_timeout)
        if rk.gone:
            self._forget(kernel_id)
        return rk.gone

    async def refresh_remote(self) -> None:
        """One GET /api/kernels per runtime (concurrently) refreshes every remote kernel."""
        by_rt = defaultdict(list)
        for rk in self._remote.values():
            by_rt[rk.rt.name].append(rk)

        async def one(rks):
            rt = rks[0].rt
            try:
                resp = await rt.fetch(
                    self.registry.http, "/api/kernels", timeout=self.model_timeout
                )
            except OSError:
                return
            if resp.code != 200:  # stock Kernel Gateway forbids listing: ask kernel by kernel
                await asyncio.gather(*(rk.refresh(self.model_timeout) for rk in rks))
                for rk in rks:
                    if rk.gone:
                        self._forget(rk.kernel_id)
                return
            upstream = {m["id"]: m for m in json.loads(resp.body)}
            for rk in rks:
                if rk.kernel_id in upstream:
                    rk.update(upstream[rk.kernel_id])
                else:
                    rk.gone = True
                    self._forget(rk.kernel_id)

        await asyncio.gather(*(one(rks) for rks in by_rt.values()))

    async def list_kernels(self):
        await self.refresh_remote()
        models = []
        for kid in list(self._kernels):  # local kernels, as the stock manager lists them
            try:
                models.append(AsyncMappingKernelManager.kernel_model(self, kid))
            except (web.HTTPError, KeyError):
                pass
        for kid, rk in self._remote.items():
            models.append(dict(rk.model, connections=self._kernel_connections.get(kid, 0)))
        return models
