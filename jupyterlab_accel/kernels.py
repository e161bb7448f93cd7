"""Mapping kernel manager: local kernels as stock jupyter_server; namespaced kernels
(`accel--{runtime}--{spec}`, names.py) get a RemoteKernelManager, kept where jupyter_server
keeps every kernel's manager, so the stock code paths (start with pending kernels and a
client-chosen kernel_id, models, culling, connection counts, shutdown) run on them unchanged.

Overridden only where a remote kernel must differ: which manager a kernel gets
(`pre_start_kernel`), refreshing remote state before models and culling, restart (stock
restart talks ZMQ), activity (the runtime's model instead of iopub), `shutdown_all` (remote
kernels keep running), and re-attaching after a server restart: the kernel -> runtime map is
persisted (0600), and the next server adopts the kernels their runtime still runs.

Remote kernels outlive this server on purpose: their runtime culls them when idle."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import re
import time
from collections import defaultdict
from urllib.parse import quote

from jupyter_client.multikernelmanager import DuplicateKernelError
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Float, Instance, default

from .filesync import FileSync
from .names import parse_name
from .remote_kernel import RemoteKernelManager, now_iso
from .runtimes import RuntimeRegistry
from .state import AccelState

MAP_FILE = "kernels.json"
_KNOWN_MODELS: contextvars.ContextVar[bool] = contextvars.ContextVar("known_models", default=False)
# The shape jupyter_server's kernel URLs accept (services/kernels/handlers.py).
KERNEL_ID_RE = re.compile(r"\w+-\w+-\w+-\w+-\w+")


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

    model_max_age = Float(
        1.0,
        config=True,
        help="Seconds a remote kernel's model is reused before a kernel or session lookup asks "
        "its runtime again (a start, restart or listing refreshes it too).",
    )
    start_check_max_age = Float(
        30.0,
        config=True,
        help="Seconds a runtime's last good health check stands in for a new one before a "
        "kernel start (a start that cannot reach the runtime marks it down at once).",
    )

    file_sync = Instance(FileSync)

    @default("file_sync")
    def _default_file_sync(self) -> FileSync:
        return FileSync(parent=self, root_dir=self.root_dir, state_dir=self._state.state_dir)

    @default("registry")
    def _default_registry(self) -> RuntimeRegistry:
        ksm_registry = getattr(self.kernel_spec_manager, "registry", None)
        return ksm_registry if ksm_registry is not None else RuntimeRegistry(parent=self)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._state = AccelState(parent=self)
        self._detaching = False
        self._reattaching: asyncio.Future | None = None
        self._to_reattach: dict[str, dict] = {}
        for kid, rec in self._state.read_json(MAP_FILE, {}).items():
            if not isinstance(rec, dict) or not isinstance(rec.get("kernel_name"), str):
                continue
            rt = self.registry.get(rec.get("runtime", ""))
            if rt is None or rt.embedded:  # the embedded gateway died with the last server
                continue
            self._to_reattach[kid] = rec
        self._save()

    # -- which manager a kernel gets -------------------------------------------------------
    def pre_start_kernel(self, kernel_name, kwargs):
        parsed = parse_name(kernel_name)
        if parsed is None:
            return super().pre_start_kernel(kernel_name, kwargs)
        kernel_id = kwargs.pop("kernel_id", None) or self.new_kernel_id()
        if kernel_id in self:
            raise DuplicateKernelError(f"Kernel already exists: {kernel_id}")
        rt = self.registry.get(parsed[0])
        if rt is None:
            raise web.HTTPError(404, f"No such runtime: {parsed[0]!r}", reason="no_such_runtime")
        km = RemoteKernelManager(
            parent=self,
            log=self.log,
            kernel_name=kernel_name,
            kernel_spec_manager=self.kernel_spec_manager,
            runtime=rt,
            http=self.registry.http,
            remote_spec=parsed[1],
            remote_id=kwargs.pop("remote_id", ""),
            started=kwargs.pop("started", "") or now_iso(),
            start_timeout=self.start_timeout,
            action_timeout=self.action_timeout,
        )
        return km, kernel_name, kernel_id

    def remote_kernel(self, kernel_id: str) -> RemoteKernelManager | None:
        """The kernel's RemoteKernelManager, or None (a local kernel, or none at all)."""
        if kernel_id not in self:
            return None
        km = self.get_kernel(kernel_id)
        return km if isinstance(km, RemoteKernelManager) else None

    def remote_kernels(self) -> dict[str, RemoteKernelManager]:
        kms = {kid: self.remote_kernel(kid) for kid in self.list_kernel_ids()}
        return {kid: km for kid, km in kms.items() if km is not None}

    def local_kernel_ids(self) -> list[str]:
        return [kid for kid in self.list_kernel_ids() if self.remote_kernel(kid) is None]

    # -- the persisted kernel map ----------------------------------------------------------
    def _save(self) -> None:
        records = dict(self._to_reattach)
        records.update({kid: km.record() for kid, km in self.remote_kernels().items()})
        self._state.write_json(MAP_FILE, records)

    def remove_kernel(self, kernel_id):
        km = super().remove_kernel(kernel_id)
        if isinstance(km, RemoteKernelManager) and not self._detaching:
            self._save()
        return km

    async def reattach(self) -> None:
        """Adopt the kernels of the last server that their runtime still runs (once; every
        caller waits for the same pass)."""
        if not self._to_reattach:
            return
        if self._reattaching is None:
            self._reattaching = asyncio.ensure_future(self._reattach_all())
        await asyncio.shield(self._reattaching)

    async def _reattach_all(self) -> None:
        records = dict(self._to_reattach)
        results = await asyncio.gather(
            *(self._reattach_one(kid, rec) for kid, rec in records.items()),
            return_exceptions=True,
        )
        for kid, result in zip(records, results):
            if isinstance(result, BaseException):
                self.log.warning("jupyterlab_accel: could not re-attach %s: %s", kid, result)
        self._to_reattach.clear()
        self._save()
        attached = len(self.remote_kernels())
        if attached:
            self.log.info("jupyterlab_accel: re-attached %d remote kernel(s)", attached)

    async def _reattach_one(self, kid: str, rec: dict) -> None:
        rt = self.registry.get(rec["runtime"])
        if rt is None:
            return
        remote_id = str(rec.get("remote_id") or kid)
        model: dict = {"execution_state": "unknown"}
        try:
            resp = await rt.fetch(
                self.registry.http,
                f"/api/kernels/{quote(remote_id, safe='')}",
                timeout=self.model_timeout,
            )
        except OSError:  # runtime down now: keep the kernel, state unknown until it answers
            resp = None
        if resp is not None and resp.code == 404:
            return  # ended while no server was watching
        if resp is not None and resp.code == 200:
            model = json.loads(resp.body)
        # The stock start path, adopting instead of starting (RemoteKernelManager.start_kernel)
        await super().start_kernel(
            kernel_id=kid,
            kernel_name=rec["kernel_name"],
            attach_model=model,
            remote_id=remote_id,
            started=rec.get("started") or "",
        )

    # -- lifecycle --------------------------------------------------------------------------
    async def start_kernel(self, *, kernel_id=None, path=None, **kwargs):
        await self.reattach()
        if kernel_id is not None and not (
            isinstance(kernel_id, str) and KERNEL_ID_RE.fullmatch(kernel_id)
        ):
            raise web.HTTPError(400, f"kernel_id must look like a UUID, not {kernel_id!r}")
        name = kwargs.get("kernel_name") or self.default_kernel_name
        parsed = parse_name(name)
        if parsed is not None and (kernel_id is None or kernel_id not in self):
            # a cluster runtime submits a job; the kernel starts on that job's runtime
            name = kwargs["kernel_name"] = await self.registry.kernel_target(name)
            parsed = parse_name(name)
            await self._check_target(parsed[0], parsed[1])
        kid = await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
        if self.remote_kernel(kid) is not None:
            try:
                self._save()
            except OSError as e:  # state folder full: no kernel left running without its record
                await self.shutdown_kernel(kid, now=True)
                raise web.HTTPError(
                    507, f"could not save the kernel map: {e.strerror or e}", reason="state_full"
                ) from None
        return kid

    async def _check_target(self, runtime: str, spec: str) -> None:
        """404 for an unknown runtime or spec, 503 for a runtime that is down: at once."""
        rt = self.registry.get(runtime)
        if rt is None:
            raise web.HTTPError(404, f"No such runtime: {runtime!r}", reason="no_such_runtime")
        # A runtime that was healthy and had this spec a moment ago is not asked again: the
        # start's own POST tells if it went down since (one link round trip less per start).
        recent = time.monotonic() - rt.ok_at < self.start_check_max_age
        if not (rt.healthy and recent and spec in rt.specs):
            await self.registry.check(rt)
        if not rt.healthy:
            raise web.HTTPError(
                503,
                f"Runtime {runtime!r} is unavailable: {rt.error}",
                reason="runtime_unavailable",
            )
        if spec not in rt.specs:
            raise web.HTTPError(
                404,
                f"Runtime {runtime!r} has no kernel spec {spec!r}",
                reason="no_such_kernelspec",
            )

    def start_watching_activity(self, kernel_id):
        km = self.remote_kernel(kernel_id)
        if km is None:
            return super().start_watching_activity(kernel_id)
        # No iopub here: activity is the runtime's (its model, refreshed with every listing).
        # The stock start path has just set "starting"; put back what the runtime said.
        km.apply_model(km.model)

    async def restart_kernel(self, kernel_id, now=False):
        km = self.remote_kernel(kernel_id)
        if km is None:
            return await super().restart_kernel(kernel_id, now=now)
        await km.restart_kernel(now=now)
        self.log.info("Kernel restarted: %s on runtime %r", kernel_id, km.rt.name)

    async def shutdown_all(self, now=False):
        """Server shutdown: local kernels only. Remote kernels keep running, stay in the
        kernel map and are re-attached by the next server (their runtime culls them)."""
        self._detaching = True
        try:
            for kid in self.remote_kernels():
                self.remove_kernel(kid)
        finally:
            self._detaching = False
        await super().shutdown_all(now=now)

    async def shutdown_runtime_kernels(self, runtime: str) -> None:
        for kid, km in self.remote_kernels().items():
            if km.rt.name == runtime:
                try:
                    await self.shutdown_kernel(kid)
                except web.HTTPError as e:
                    self.log.warning("jupyterlab_accel: %s", e.log_message)
                    self.remove_kernel(kid)

    # -- remote state -----------------------------------------------------------------------
    def _drop_if_gone(self, km: RemoteKernelManager) -> None:
        if km.gone and self.remote_kernel(km.kernel_id) is km:
            self.log.warning("Kernel %s is gone from runtime %r", km.kernel_id, km.rt.name)
            self.remove_kernel(km.kernel_id)

    async def refresh_remote(self) -> None:
        """One GET /api/kernels per runtime (concurrently) refreshes every remote kernel."""
        by_rt: dict[str, list[RemoteKernelManager]] = defaultdict(list)
        for km in self.remote_kernels().values():
            by_rt[km.rt.name].append(km)

        async def one(kms: list[RemoteKernelManager]) -> None:
            rt = kms[0].rt
            try:
                resp = await rt.fetch(
                    self.registry.http, "/api/kernels", timeout=self.model_timeout
                )
                upstream = {m["id"]: m for m in json.loads(resp.body)} if resp.code == 200 else None
            except (OSError, ValueError, TypeError, KeyError):
                return  # unreachable or garbled: every kernel keeps its last known state
            if upstream is None:  # stock Kernel Gateway forbids listing: ask kernel by kernel
                await asyncio.gather(*(km.refresh(self.model_timeout) for km in kms))
            for km in kms:
                model = upstream.get(km.remote_id or km.kernel_id) if upstream is not None else None
                if model is not None:
                    km.apply_model(model)
                elif upstream is not None:
                    km.mark_gone()
                self._drop_if_gone(km)

        await asyncio.gather(*(one(kms) for kms in by_rt.values()))

    async def kernel_model(self, kernel_id):
        await self.reattach()
        km = self.remote_kernel(kernel_id)
        if km is not None:
            await self._refresh_one(km)
        return super().kernel_model(kernel_id)  # stock model; 404 when gone

    async def _refresh_one(self, km: RemoteKernelManager) -> None:
        """The kernel's model from its runtime, unless it came less than `model_max_age` ago
        (a session lookup asks for the same kernel several times per request), or the caller
        said the last known one will do (`known_models`)."""
        known = _KNOWN_MODELS.get() and bool(km.model)
        if not known and time.monotonic() - km.refreshed_at >= self.model_max_age:
            await km.refresh(self.model_timeout)
        self._drop_if_gone(km)

    @contextlib.contextmanager
    def known_models(self):
        """Within this block (this task only), kernel and session lookups use each remote
        kernel's last known model instead of asking its runtime: for callers that need a
        session's path and kernel id, not the kernel's live state."""
        token = _KNOWN_MODELS.set(True)
        try:
            yield
        finally:
            _KNOWN_MODELS.reset(token)

    async def list_kernels(self):
        await self.reattach()
        await self.refresh_remote()
        models = []
        for kid in self.list_kernel_ids():
            try:
                models.append(super().kernel_model(kid))
            except (web.HTTPError, KeyError):
                pass  # went away meanwhile
        return models

    async def kernel_gone(self, kernel_id: str) -> bool:
        """True when a kernel is not (any more) here or on its runtime (session check)."""
        await self.reattach()
        km = self.remote_kernel(kernel_id)
        if km is None:
            return kernel_id not in self
        await self._refresh_one(km)
        return km.gone

    async def cull_kernels(self):
        await self.refresh_remote()  # stock culling then reads fresh activity markers
        await super().cull_kernels()
