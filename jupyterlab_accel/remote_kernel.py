"""One kernel on one runtime, kept where jupyter_server keeps a kernel's manager.

`RemoteKernelManager` is to a runtime what jupyter_server's GatewayKernelManager is to its one
gateway: a ServerKernelManager whose start, shutdown, restart and interrupt are REST calls to
the runtime, and whose activity markers (`execution_state`, `last_activity`) are refreshed
from the runtime's kernel model. The stock mapping manager's code paths (kernel models,
culling, connection counts, pending kernels) therefore work on it unchanged. It has no ZMQ
channels: its websocket is relayed by relay.AccelWebsocketConnection."""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime, timezone
from urllib.parse import quote

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import in_pending_state
from jupyter_server.services.kernels.kernelmanager import (
    ServerKernelManager,
    emit_kernel_action_event,
)
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect
from traitlets import Any, Dict, Instance, Unicode

from .runtime import BadAnswer, Runtime


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_time(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def upstream_error(resp, what: str) -> web.HTTPError:
    """The runtime's refusal as data: its status (a 5xx of ours where it gave none usable),
    its `message` and its `reason` (no_free_device, max_kernels, ...), not wrapped in text.
    jupyter_server writes an HTTPError as `{"message": log_message, "reason": reason}`."""
    message: str = ""
    reason: str | None = None
    try:
        body = json.loads(resp.body or b"{}")
    except (ValueError, AttributeError):
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            message = body["message"]
        if isinstance(body.get("reason"), str):
            reason = body["reason"]
    status = resp.code if 400 <= resp.code < 600 and resp.code != 599 else 502
    return web.HTTPError(status, message or f"{what} ({resp.code} {resp.reason})", reason=reason)


class KernelGone(Exception):
    """The runtime no longer has this kernel (culled, died, runtime restarted)."""


class RemoteKernelManager(ServerKernelManager):
    """One kernel on one runtime. `kernel_name` is the namespaced name the client used,
    `remote_spec` the runtime's own name for it, `remote_id` the runtime's kernel id (the same
    as `kernel_id` wherever the runtime honours a client-chosen id, as jupyter_server does)."""

    runtime = Instance(Runtime)
    http = Instance(AsyncHTTPClient)
    remote_spec = Unicode()
    remote_id = Unicode()
    started = Unicode()
    action_timeout = Any(60.0)
    start_timeout = Any(120.0)
    # The last model the runtime gave for this kernel (before a first answer: a placeholder).
    model = Dict()

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.execution_state = "starting"
        self.last_activity = datetime.now(timezone.utc)
        self.gone = False  # True once the runtime said it no longer has the kernel
        self.stopping = False  # True once this server asked for its shutdown
        self.refreshed_at = 0.0

    # -- what jupyter_server asks of a per-kernel manager ---------------------------------
    @property
    def rt(self) -> Runtime:
        return self.runtime

    @property
    def has_kernel(self) -> bool:
        return bool(self.remote_id) and not self.gone

    @property
    def kernel_spec(self) -> KernelSpec:
        """The namespaced spec from the runtime's last health check (cull_kernels reads
        its metadata); a bare one when the runtime is gone from the registry."""
        try:
            model = self.kernel_spec_manager.get_kernel_spec(self.kernel_name)
            spec = model["spec"] if isinstance(model, dict) else model.to_dict()
        except Exception:  # noqa: BLE001 - runtime removed or unhealthy: no metadata
            spec = {}
        return KernelSpec(
            name=self.kernel_name,
            display_name=str(spec.get("display_name") or self.kernel_name),
            language=str(spec.get("language") or ""),
            metadata=dict(spec.get("metadata") or {}),
            argv=[],
        )

    def update_env(self, *, env) -> None:
        """A remote kernel's environment is fixed at start (a session rename changes nothing)."""

    def cleanup_resources(self, restart: bool = False) -> None:  # type: ignore[override]
        """Nothing local: no connection file, no ports."""

    def client(self, **kwargs):
        raise NotImplementedError("a remote kernel's channels are relayed, not ZMQ")

    def record(self) -> dict:
        """What the kernel map (kernels.json) keeps to re-attach after a server restart."""
        return {
            "runtime": self.rt.name,
            "remote_spec": self.remote_spec,
            "remote_id": self.remote_id or self.kernel_id,
            "kernel_name": self.kernel_name,
            "started": self.started,
        }

    @property
    def kernel_path(self) -> str:
        return f"/api/kernels/{quote(self.remote_id or self.kernel_id, safe='')}"

    # -- the runtime's view of the kernel ---------------------------------------------------
    def apply_model(self, upstream: dict) -> None:
        """Take the runtime's activity markers (state, last activity, reason)."""
        self.model = dict(upstream)
        state = upstream.get("execution_state")
        if isinstance(state, str) and state:
            self.execution_state = state
        last = parse_time(upstream.get("last_activity"))
        if last is not None:
            self.last_activity = last
        if isinstance(upstream.get("reason"), str):
            self.reason = upstream["reason"]
        self.refreshed_at = time.monotonic()

    def mark_gone(self) -> None:
        self.gone = True
        self.execution_state = "dead"

    async def _call(self, path: str, method: str, timeout: float, body=None):
        try:
            return await self.rt.fetch(self.http, path, method, body=body, timeout=timeout)
        except OSError as e:  # unreachable, or (BadAnswer) a malformed answer
            # Not reachable: down until a health check says otherwise (a start skips the
            # check when the last one is recent). A malformed answer is marked by api(), a
            # timeout may be a slow kernel start.
            if not isinstance(e, (BadAnswer, TimeoutError)) and "Timeout" not in str(e):
                self.rt.mark_unhealthy(f"unreachable: {e}")
            raise web.HTTPError(503, f"runtime {self.rt.name!r} is unreachable: {e}") from None

    async def refresh(self, timeout: float) -> dict | None:
        """GET the kernel's model; a 404 means it is gone. An unreachable runtime keeps the
        last known model (None is returned only for a gone kernel)."""
        if self.gone:
            return None
        if not self.rt.healthy and time.monotonic() - self.rt.checked_at < 5:
            return self.model  # runtime known down just now: do not wait for it again
        try:
            resp = await self.rt.fetch(self.http, self.kernel_path, timeout=timeout)
        except OSError as e:
            self.rt.mark_unhealthy(f"unreachable: {e}")
            return self.model
        if resp.code == 404:
            self.mark_gone()
            return None
        if resp.code == 200:
            try:
                self.apply_model(json.loads(resp.body))
            except (ValueError, AttributeError):
                pass
        return self.model

    # -- lifecycle, as REST calls -----------------------------------------------------------
    @emit_kernel_action_event(success_msg="Kernel {kernel_id} was started.")
    @in_pending_state
    async def start_kernel(self, **kwargs) -> None:
        """POST /api/kernels on the runtime with our kernel id; or, with `attach_model`,
        adopt a kernel the runtime already runs (re-attach after a server restart)."""
        self.kernel_id = self.kernel_id or kwargs.get("kernel_id")  # the mapping's key
        attach = kwargs.get("attach_model")
        if attach is not None:
            self.apply_model(attach)
            return
        env = kwargs.get("env") or {}
        body = {
            "name": self.remote_spec,
            "kernel_id": self.kernel_id,
            # Stock gateways forward KERNEL_* variables only; the rest of our env stays here.
            "env": {k: v for k, v in env.items() if k.startswith("KERNEL_")},
        }
        folder = self.notebook_folder(kwargs.get("cwd"))
        file_sync = getattr(self.parent, "file_sync", None)
        sync = None
        if file_sync is not None and folder is not None and file_sync.supports(self.rt):
            body["path"] = folder
            if file_sync.beside_start(self.rt):
                # The folder goes while the kernel boots (the gateway makes a missing `path`);
                # the start answers once both are done, so the first cell finds its files.
                body["make_path"] = True
                sync = asyncio.ensure_future(file_sync.before_start(self.rt, folder))
            else:  # an older gateway: the folder first, then the start
                await file_sync.before_start(self.rt, folder)
        resp = await self._call("/api/kernels", "POST", self.start_timeout, body=body)
        if resp.code not in (200, 201):  # a sync still going ends by itself (its own timeout)
            raise upstream_error(
                resp, f"runtime {self.rt.name!r} could not start {self.remote_spec!r}"
            )
        if sync is not None:
            await sync  # before_start reports its failures in the sync status, never raises
        model = json.loads(resp.body)
        self.remote_id = str(model.get("id") or self.kernel_id)
        if self.remote_id != self.kernel_id:
            self.log.warning(
                "jupyterlab_accel: runtime %r ignored kernel id %s (it chose %s)",
                self.rt.name,
                self.kernel_id,
                self.remote_id,
            )
        self.started = self.started or now_iso()
        self.apply_model(model)
        if file_sync is not None and folder is not None:
            file_sync.track(self.kernel_id, self.rt, folder, remote_id=self.remote_id)
        self.log.info(
            "Kernel %s runs on runtime %r (%s)", self.kernel_id, self.rt.name, self.remote_spec
        )

    def notebook_folder(self, cwd) -> str | None:
        """The kernel's folder relative to the server's root (stock start turns the session's
        path into `cwd`), or None when it has none or lies outside the root."""
        root = getattr(self.parent, "root_dir", None)
        if not cwd or not root:
            return None
        rel = os.path.relpath(os.path.realpath(cwd), os.path.realpath(root))
        if rel == os.curdir:
            return ""
        return None if rel.startswith(os.pardir) else rel.replace(os.sep, "/")

    @emit_kernel_action_event(success_msg="Kernel {kernel_id} was shutdown.")
    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        """DELETE on the runtime; an unreachable runtime is logged (its culler ends the
        kernel), a 404 means it is gone already."""
        self.stopping = True
        try:
            resp = await self.rt.fetch(
                self.http, self.kernel_path, "DELETE", timeout=self.action_timeout
            )
        except OSError as e:
            self.log.warning(
                "jupyterlab_accel: runtime %r unreachable while shutting down %s: %s",
                self.rt.name,
                self.kernel_id,
                e,
            )
            self.mark_gone()
            return
        if resp.code not in (204, 404):
            self.stopping = False
            raise upstream_error(resp, f"shutdown failed on runtime {self.rt.name!r}")
        self.mark_gone()
        file_sync = getattr(self.parent, "file_sync", None)
        if file_sync is not None:  # a last pull of its files, off the shutdown's path
            asyncio.ensure_future(file_sync.forget(self.kernel_id))

    async def _post(self, action: str) -> None:
        resp = await self._call(f"{self.kernel_path}/{action}", "POST", self.action_timeout, b"")
        if resp.code == 404:
            self.mark_gone()
            raise web.HTTPError(404, f"Kernel does not exist: {self.kernel_id}")
        if resp.code >= 300:
            raise upstream_error(resp, f"{action} failed on runtime {self.rt.name!r}")
        if resp.body:
            try:
                self.apply_model(json.loads(resp.body))
            except (ValueError, AttributeError):
                pass

    @emit_kernel_action_event(success_msg="Kernel {kernel_id} was restarted.")
    async def restart_kernel(self, now: bool = False, **kw) -> None:
        await self._post("restart")

    @emit_kernel_action_event(success_msg="Kernel {kernel_id} was interrupted.")
    async def interrupt_kernel(self) -> None:
        await self._post("interrupt")

    async def is_alive(self) -> bool:  # type: ignore[override]  # async, as stock's gateway
        return await self.refresh(self.action_timeout) is not None

    # -- the websocket's upstream leg -------------------------------------------------------
    async def open_channels(
        self,
        session_id: str | None,
        subprotocols: list[str] | None,
        max_message_size: int,
        timeout: float,
        overlap: float = 0,
        ping_interval: float | None = None,
    ) -> WebSocketClientConnection:
        """The relay's upstream leg: TCP_NODELAY, no message size cap. `overlap`: ask the
        runtime to re-send that many seconds before this session's last message."""
        params = [f"session_id={quote(session_id)}"] if session_id else []
        if overlap:
            params.append(f"accel_overlap={overlap:g}")
        query = "?" + "&".join(params) if params else ""
        req: HTTPRequest = self.rt.request(
            f"{self.kernel_path}/channels{query}", ws=True, timeout=timeout
        )
        options: dict = {
            "max_message_size": max_message_size,
            "subprotocols": subprotocols or None,
            "ping_interval": ping_interval or None,
            "ping_timeout": ping_interval or None,
        }
        connect = getattr(self.rt, "websocket_connect", None)  # the runtime's resolver
        conn = await (connect(req, **options) if connect else websocket_connect(req, **options))
        if conn.protocol is not None:
            conn.protocol.set_nodelay(True)
        return conn
