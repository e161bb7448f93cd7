"""The gateway's kernel manager: jupyter_server's, plus device allocation, limits and notices.

Its collaborators (device backend, allocator, limits, culler, output journal) are typed traits
built from configuration when first used, never assigned from outside. Features that need
something of every kernel add to `kernel_env` (variables, instead of writing os.environ) or
`after_shutdown_all` (coroutines run at server shutdown once every kernel stopped)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any as AnyType

from jupyter_server.services.kernels.kernelmanager import (
    AsyncMappingKernelManager,
    ServerKernelManager,
)
from tornado import web
from traitlets import Dict, Instance, List, Unicode, default

from .activity import activity_listener
from .allocation import DeviceAllocator, Refused, requested_count
from .devices import DeviceBackend, DeviceSelector
from .journal import OutputJournal
from .kernel_env import BadKernelEnv, check_kernel_env
from .limits import Culler, Expiry, KernelLimits, utcnow

# The gateway's own secrets stay out of kernel processes.
PRIVATE_ENV = ("JUPYTER_TOKEN", "JUPYTER_GATEWAY_AUTH_TOKEN")


class AccelKernelManager(AsyncMappingKernelManager):
    """Kernels of this host. Each start reserves devices and passes the limits; each end
    (shutdown, death) releases them."""

    env_passthrough = List(
        Unicode(),
        config=True,
        help="Names of variables a client's kernel start `env` may set besides KERNEL_*.",
    )
    kernel_env = Dict(
        value_trait=Unicode(),
        help="Variables every kernel of this gateway gets (set by features when they load).",
    )

    backend = Instance(DeviceBackend)
    allocator = Instance(DeviceAllocator)
    limits = Instance(KernelLimits)
    culler = Instance(Culler)
    journal = Instance(OutputJournal)

    @default("backend")
    def _default_backend(self) -> DeviceBackend:
        return DeviceSelector(parent=self).select()

    @default("allocator")
    def _default_allocator(self) -> DeviceAllocator:
        indices = [d.index for d in self.backend.devices()]
        return DeviceAllocator(indices, self.backend.visibility_env, parent=self)

    @default("limits")
    def _default_limits(self) -> KernelLimits:
        return KernelLimits(parent=self)

    @default("culler")
    def _default_culler(self) -> Culler:
        return Culler(self.limits, self)

    @default("journal")
    def _default_journal(self) -> OutputJournal:
        return OutputJournal(parent=self)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._starting: set[str] = set()
        self._ending: set[str] = set()
        self._started: dict[str, AnyType] = {}
        self._sockets: dict[str, set] = {}
        self._activity: dict[str, Callable] = {}
        self.after_shutdown_all: list[Callable[[], Awaitable[None]]] = []

    # -- start / end -------------------------------------------------------------------------

    def client_env(self, env) -> dict[str, str]:
        """The part of a client's start `env` a kernel may get: KERNEL_* and passthrough names."""
        try:
            env = check_kernel_env(env)  # 400 naming the variable, not a 500 at exec
        except BadKernelEnv as e:
            raise web.HTTPError(400, str(e), reason="bad_request") from None
        allowed = set(self.env_passthrough)
        return {
            str(k): str(v) for k, v in env.items() if str(k).startswith("KERNEL_") or k in allowed
        }

    def make_folder(self, path: str) -> None:
        """Make a start's missing working folder inside the workspace (`make_path`: the server's
        file sync may still be sending it; stock would start the kernel in the nearest folder
        that exists, which is also what a start without `make_path` gets, since stock clients
        send a notebook's path there)."""
        root = os.path.realpath(self.root_dir)
        target = os.path.realpath(os.path.join(root, *[p for p in str(path).split("/") if p]))
        if not target.startswith(root + os.sep) or os.path.exists(target):
            return
        try:
            os.makedirs(target)
        except OSError as e:
            self.log.warning("Kernel folder %r not made: %s", path, e)

    async def start_kernel(self, *, kernel_id=None, path=None, make_path=False, **kwargs):
        if kernel_id is not None and kernel_id in self:
            return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
        kernel_id = kernel_id or str(uuid.uuid4())
        if path is None:  # jupyter_server would leave the kernel in the gateway's own cwd
            path = ""  # the workspace root, as Colab's kernels start in /content
        if make_path:
            self.make_folder(path)
        client_env = dict(kwargs.pop("env", None) or {})
        try:
            requested = requested_count(client_env)
        except ValueError as e:
            raise web.HTTPError(400, str(e), reason="bad_request") from None
        # Admission and allocation run without an await between them: no two starts race.
        try:
            self.limits.admit(len(set(self.list_kernel_ids()) | self._starting))
            devices = self.allocator.allocate(kernel_id, requested)
        except Refused as e:
            raise web.HTTPError(503, e.message, reason=e.reason) from None
        # The kernel's own environment: os.environ is read, never written.
        env = {**os.environ, **self.kernel_env, **client_env, **self.allocator.env_for(devices)}
        for name in PRIVATE_ENV:
            env.pop(name, None)
        self._starting.add(kernel_id)
        try:
            kid = await super().start_kernel(kernel_id=kernel_id, path=path, env=env, **kwargs)
            await self.journal.wait_subscribed(kid, self.get_kernel(kid))
            self._started[kid] = utcnow()
            self.culler.start()  # once; needs the running event loop
            return kid
        except BaseException:
            self._release(kernel_id)
            raise
        finally:
            self._starting.discard(kernel_id)

    async def shutdown_kernel(self, kernel_id, now=False, restart=False):
        # The journal keeps recording until the kernel is down, so its websockets get the
        # kernel's last messages (shutdown_reply, status) before they close.
        self._ending.add(kernel_id)
        try:
            return await super().shutdown_kernel(kernel_id, now=now, restart=restart)
        finally:
            self._ending.discard(kernel_id)
            if kernel_id not in self:
                self._release(kernel_id)

    async def after_all_stopped(self) -> None:
        """Server shutdown, once every kernel stopped (AccelGatewayApp.cleanup_kernels): each
        `after_shutdown_all` hook, in order (mounts flush when no kernel can write any more)."""
        for hook in self.after_shutdown_all:
            try:
                await hook()
            except Exception:
                self.log.exception("A shutdown step failed after the kernels stopped")

    async def restart_kernel(self, kernel_id, now=False):
        try:
            result = await super().restart_kernel(kernel_id, now=now)
            await self.journal.wait_subscribed(kernel_id, self.get_kernel(kernel_id))
            return result
        except Exception:
            km = self.get_kernel(kernel_id) if kernel_id in self else None
            if km is not None and not await km.is_alive():
                self.log.warning(
                    "Kernel %s did not come back from a restart; removing it", kernel_id
                )
                self.remove_kernel(kernel_id)  # frees its devices for others
            raise

    def remove_kernel(self, kernel_id):
        # Every way out (shutdown, death after failed restarts) comes through here.
        self._release(kernel_id)
        return super().remove_kernel(kernel_id)

    # -- output journal (journal.py): replaces the stock unbounded offline buffer -------------
    def start_watching_activity(self, kernel_id):
        """One iopub subscription per kernel: the journal's. Activity (last_activity,
        execution_state) is read from the journal's entries without verifying each message's
        signature (activity.py); without a journal, stock watching."""
        kernel = self.get_kernel(kernel_id)
        journal = self.journal.open(kernel_id, kernel.connect_iopub(), kernel.session)
        if journal is None:
            super().start_watching_activity(kernel_id)
            return
        kernel.reason = ""
        kernel.last_activity = utcnow()
        listener = self._activity.get(kernel_id)
        if listener is None:
            listener = self._activity[kernel_id] = activity_listener(self, kernel)
        if listener not in journal.listeners:
            journal.listeners.append(listener)

    def stop_watching_activity(self, kernel_id):
        journal = self.journal.get(kernel_id)
        if journal is not None and kernel_id not in self._ending:
            journal.detach()  # a restart attaches a new stream; the journal itself stays
        super().stop_watching_activity(kernel_id)

    def start_buffering(self, kernel_id, session_key, channels):
        if self.journal.enabled:
            for stream in channels.values():  # the journal keeps what the client misses
                stream.close()
            return
        super().start_buffering(kernel_id, session_key, channels)

    def _release(self, kernel_id: str) -> None:
        self._close_sockets(kernel_id)
        self.journal.close(kernel_id)
        self.allocator.release(kernel_id)
        self.culler.forget(kernel_id)
        self._started.pop(kernel_id, None)
        self._activity.pop(kernel_id, None)

    # -- activity, expiry, notices -----------------------------------------------------------

    def kernel_expiry(self, kernel_id: str) -> Expiry:
        kernel = self.get_kernel(kernel_id)
        started = self._started.get(kernel_id) or utcnow()
        last = getattr(kernel, "last_activity", None) or started
        return self.limits.expiry(started, last, getattr(kernel, "execution_state", "") == "busy")

    def keepalive(self, kernel_id: str) -> None:
        """Reset the idle clock, as activity would."""
        if kernel_id not in self:
            raise web.HTTPError(404, f"Kernel does not exist: {kernel_id}")
        kernel = self.get_kernel(kernel_id)
        assert isinstance(kernel, ServerKernelManager)  # kernel_manager_class's base (stock)
        kernel.last_activity = utcnow()

    def register_socket(self, kernel_id: str, connection) -> None:
        self._sockets.setdefault(kernel_id, set()).add(connection)

    def unregister_socket(self, kernel_id: str, connection) -> None:
        self._sockets.get(kernel_id, set()).discard(connection)

    def _close_sockets(self, kernel_id: str) -> None:
        """A kernel that ended closes its websockets, so clients (and relays) know at once."""
        for conn in list(self._sockets.pop(kernel_id, ())):
            try:
                conn.websocket_handler.close(1000, "kernel shut down")
            except Exception as e:  # already closing
                self.log.debug("Closing a websocket of %s: %s", kernel_id, e)

    def send_notice(self, kernel_id: str, content: dict) -> int:
        """Send an accel_notice iopub message on every open websocket of a kernel."""
        sent = 0
        for conn in list(self._sockets.get(kernel_id, ())):
            try:
                conn.send_notice(content)
                sent += 1
            except Exception as e:
                self.log.debug("Notice to a closed websocket of %s: %s", kernel_id, e)
        return sent

    def accel_model(self, kernel_id: str) -> dict:
        """A kernel as GET /api/accel/kernels lists it."""
        model = self.kernel_model(kernel_id)
        expiry = self.kernel_expiry(kernel_id)
        started = self._started.get(kernel_id)
        return {
            "id": kernel_id,
            "name": model["name"],
            "devices": self.allocator.assigned(kernel_id),
            "started": started.isoformat() if started else None,
            "last_activity": model.get("last_activity"),
            "execution_state": model.get("execution_state"),
            "connections": model.get("connections", 0),
            "expires_at": expiry.at.isoformat() if expiry.at else None,
            "expiry_reason": expiry.reason,
        }

    def kernel_pid(self, kernel_id: str) -> int | None:
        km = self.get_kernel(kernel_id) if kernel_id in self else None
        provisioner = getattr(km, "provisioner", None)
        pid = getattr(provisioner, "pid", None)
        return pid if isinstance(pid, int) else None
