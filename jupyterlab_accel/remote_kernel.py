"""A kernel that lives on a runtime: REST calls to it, and its websocket URL.

Stands where jupyter_server keeps a per-kernel KernelManager, so the websocket handler can hand
it to our connection class as `parent`."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from urllib.parse import quote

from tornado import web
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection
from traitlets import Any, Unicode
from traitlets.config import LoggingConfigurable

from .runtime import Runtime


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def upstream_error(resp, what: str) -> web.HTTPError:
    """An HTTPError carrying the runtime's own message (e.g. 'no free device')."""
    message = ""
    try:
        body = json.loads(resp.body or b"{}")
        message = body.get("message") or body.get("reason") or ""
    except (ValueError, AttributeError):
        pass
    status = resp.code if 400 <= resp.code < 600 and resp.code != 599 else 502
    return web.HTTPError(status, f"{what}: {message or resp.reason}")


class RemoteKernel(LoggingConfigurable):
    """One kernel on one runtime. `kernel_name` is the namespaced name the client used."""

    kernel_id = Unicode()
    kernel_name = Unicode()
    remote_spec = Unicode()
    runtime = Any()  # Runtime
    http = Any()  # AsyncHTTPClient of the registry
    started = Unicode()

    def __init__(self, **kw):
        super().__init__(**kw)
        self.model = {
            "id": self.kernel_id,
            "name": self.kernel_name,
            "last_activity": self.started or _now_iso(),
            "execution_state": "unknown",
            "connections": 0,
        }
        self.gone = False
        self.refreshed_at = 0.0

    @property
    def rt(self) -> Runtime:
        return self.runtime

    def record(self) -> dict:
        return {
            "runtime": self.rt.name,
            "remote_spec": self.remote_spec,
            "kernel_name": self.kernel_name,
            "started": self.started,
        }

    def update(self, upstream_model: dict) -> None:
        """Take the runtime's view (state, activity) under our namespaced name."""
        for key in ("last_activity", "execution_state", "reason"):
            if upstream_model.get(key) is not None:
                self.model[key] = upstream_model[key]
        self.refreshed_at = time.monotonic()

    async def refresh(self, timeout: float) -> None:
        """GET the kernel's model; a 404 means it is gone (culled, died, runtime restarted)."""
        if not self.rt.healthy and time.monotonic() - self.rt.checked_at < 5:
            return  # runtime known down just now: keep the last known model, do not wait
        try:
            resp = await self.rt.fetch(self.http, f"/api/kernels/{self.kernel_id}", timeout=timeout)
        except OSError as e:
            self.rt.mark_unhealthy(f"unreachable: {e}")
            return  # runtime unreachable: keep the last known model
        if resp.code == 404:
            self.gone = True
            self.model["execution_state"] = "dead"
        elif resp.code == 200:
            self.update(json.loads(resp.body))

    async def _post(self, action: str, timeout: float) -> None:
        try:
            resp = await self.rt.fetch(
                self.http,
                f"/api/kernels/{self.kernel_id}/{action}",
                "POST",
                body=b"",
                timeout=timeout,
            )
        except OSError as e:
            raise web.HTTPError(502, f"runtime {self.rt.name!r} unreachable: {e}") from None
        if resp.code == 404:
            self.gone = True
            raise web.HTTPError(404, f"Kernel does not exist: {self.kernel_id}")
        if resp.code >= 300:
            raise upstream_error(resp, f"{action} failed on runtime {self.rt.name!r}")
        if resp.body:
            try:
                self.update(json.loads(resp.body))
            except ValueError:
                pass

    async def interrupt(self, timeout: float) -> None:
        await self._post("interrupt", timeout)

    async def restart(self, timeout: float) -> None:
        await self._post("restart", timeout)

    async def shutdown(self, timeout: float) -> None:
        try:
            resp = await self.rt.fetch(
                self.http, f"/api/kernels/{self.kernel_id}", "DELETE", timeout=timeout
            )
        except OSError as e:
            self.log.warning(
                "jupyterlab_accel: runtime %r unreachable while shutting down %s: %s",
                self.rt.name,
                self.kernel_id,
                e,
            )
            return
        if resp.code not in (204, 404):
            raise upstream_error(resp, f"shutdown failed on runtime {self.rt.name!r}")
        self.gone = True

    async def open_channels(
        self,
        session_id: str | None,
        subprotocols: list[str] | None,
        max_message_size: int,
        timeout: float,
        overlap: float = 0,
        ping_interval: float | None = None,
    ) -> WebSocketClientConnection:
        """The upstream leg of the relay: TCP_NODELAY, no message size cap. `overlap`: ask
        the runtime to re-send that many seconds before this session's last message."""
        params = [f"session_id={quote(session_id)}"] if session_id else []
        if overlap:
            params.append(f"accel_overlap={overlap:g}")
        query = "?" + "&".join(params) if params else ""
        req: HTTPRequest = self.rt.request(
            f"/api/kernels/{self.kernel_id}/channels{query}", ws=True, timeout=timeout
        )
        conn = await self.rt.websocket_connect(
            req,
            max_message_size=max_message_size,
            subprotocols=subprotocols or None,
            ping_interval=ping_interval or None,
            ping_timeout=ping_interval or None,
        )
        conn.protocol.set_nodelay(True)
        return conn
