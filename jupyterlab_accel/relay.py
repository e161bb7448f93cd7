"""Kernel websocket connections, chosen per kernel: `AccelWebsocketConnection` (the class
ServerApp is configured with) gives a local kernel the stock ZMQ bridge (plus TCP_NODELAY) and
a kernel on a runtime `RemoteKernelWebsocketConnection`, a relay to the runtime's
/api/kernels/{id}/channels built on BaseKernelWebsocketConnection.

Authentication (jupyter_server's ws_authenticated), authorization and the Origin check all
happen before the relay opens anything upstream: a refused handshake costs the runtime nothing.

The relay opens the upstream leg before answering the client's handshake, offering the
subprotocols the client offered, then gives the client whatever the runtime chose. Both legs
therefore always speak the same protocol (v1.kernel.websocket.jupyter.org where the runtime
speaks it, the legacy JSON protocol otherwise), and frames pass through untouched: no
decoding, no re-encoding. Upstream has no message size cap; reads wait for the client's
writes to drain, so memory stays flat however much output flows.

When the upstream leg drops while the client stays, the relay reconnects with back-off under
the same session id and tells the client with accel_notice messages (reconnecting,
runtime_lost, reconnected, kernel_dead); see reconnect.py. A kernel that ends on purpose is
not a lost link, and the client gets the kernel's own last messages (shutdown_reply, status)
and no notice: shut down through this server (DELETE, a session's kernel change), the
client's socket stays open as stock jupyter_server leaves it; ended on the runtime (its
culler, another client; the runtime closes with code 1000), the client's socket is closed
the same way."""

from __future__ import annotations

import asyncio
import sys
import weakref
from collections import deque

from jupyter_server.services.kernels.connection.base import BaseKernelWebsocketConnection
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado import web
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError
from traitlets import Float, Int

from . import reconnect
from .remote_kernel import RemoteKernelManager

# The close code of a websocket that ended on purpose (RFC 6455 "normal closure"): our gateway
# closes a kernel's websockets with it when the kernel ends.
NORMAL_CLOSURE = 1000


class LocalKernelWebsocketConnection(ZMQChannelsWebsocketConnection):
    """Stock jupyter_server's ZMQ bridge, with Nagle's algorithm off."""

    async def connect(self):
        self.websocket_handler.set_nodelay(True)
        return await super().connect()


class AccelWebsocketConnection(BaseKernelWebsocketConnection):
    """What ServerApp.kernel_websocket_connection_class names. Constructing it gives the
    connection for that kernel (`parent`): `RemoteKernelWebsocketConnection` for a kernel on
    a runtime, `LocalKernelWebsocketConnection` (stock ZMQ) otherwise; neither branches on
    where the kernel is. Its options configure the relay."""

    def __new__(cls, *args, **kwargs):
        if cls is AccelWebsocketConnection:
            if not isinstance(kwargs.get("parent"), RemoteKernelManager):
                return LocalKernelWebsocketConnection(*args, **kwargs)  # not a subclass: built here
            cls = RemoteKernelWebsocketConnection  # a subclass: Python runs its __init__
        return super().__new__(cls, *args, **kwargs)

    @classmethod
    async def close_all(cls):
        """Server shutdown (ServerApp._cleanup awaits it): close both kinds."""
        await LocalKernelWebsocketConnection.close_all()
        await RemoteKernelWebsocketConnection.close_all()

    upstream_max_message_size = Int(
        0,
        config=True,
        help="Largest message (bytes) accepted from a runtime; 0 = no limit. The stock 10 MiB "
        "cap drops large outputs (a 50 MB image or dataframe).",
    )
    upstream_connect_timeout = Float(
        20, config=True, help="Seconds to open the websocket to a runtime."
    )
    reconnect_timeout = Float(
        600,
        config=True,
        help="Seconds the relay keeps reconnecting to a runtime whose kernel websocket "
        "dropped while the browser stayed connected; then the browser's socket is closed.",
    )
    reconnect_backoff = Float(
        0.25, config=True, help="First delay (s) between reconnect attempts; doubles each time."
    )
    reconnect_backoff_max = Float(
        4, config=True, help="Longest delay (s) between reconnect attempts."
    )
    lost_after = Float(
        2,
        config=True,
        help="Seconds of failed reconnects after which the browser is told 'runtime_lost' "
        "(reconnection goes on until reconnect_timeout).",
    )
    reconnect_overlap = Float(
        10,
        config=True,
        help="Seconds of output before the break that the runtime re-sends on reconnect (the "
        "relay drops the repeats): covers frames in flight when the link broke.",
    )
    upstream_ping_interval = Float(
        15,
        config=True,
        help="Seconds between websocket pings to the runtime; a link that answers none within "
        "as long is treated as dropped (0 disables).",
    )
    max_queued_messages = Int(
        1000,
        config=True,
        help="Client messages held while reconnecting; beyond that the oldest are dropped.",
    )


class RemoteKernelWebsocketConnection(AccelWebsocketConnection):
    """A frame relay between the browser and the kernel's websocket on its runtime."""

    _open: weakref.WeakSet[RemoteKernelWebsocketConnection] = weakref.WeakSet()
    _upstream: WebSocketClientConnection | None = None
    _pump_task: asyncio.Future | None = None
    _closed = False
    _ended = False  # the kernel ended on purpose: relay nothing more, keep the client's socket
    _queue: deque | None = None  # client messages held while reconnecting, else None
    _seen = reconnect.SeenIds(0)  # replaced per connection in prepare()

    @property
    def remote_kernel(self) -> RemoteKernelManager:
        return self.kernel_manager

    @classmethod
    async def close_all(cls):
        for connection in list(cls._open):
            connection.websocket_handler.close()

    # -- handshake ----------------------------------------------------------------------
    def _refuse_before_upstream(self) -> None:
        """The checks tornado runs only after prepare(), run first: a request that is not a
        websocket upgrade, or comes from a foreign Origin, opens no upstream connection."""
        handler = self.websocket_handler
        headers = handler.request.headers
        if headers.get("Upgrade", "").lower() != "websocket":
            raise web.HTTPError(400, 'Can "Upgrade" only to "WebSocket".')
        origin = headers.get("Origin") or headers.get("Sec-Websocket-Origin")
        if origin is not None and not handler.check_origin(origin):
            raise web.HTTPError(403, "Cross origin websockets not allowed")

    async def prepare(self):
        self._refuse_before_upstream()
        offered = self.websocket_handler.request.headers.get("Sec-WebSocket-Protocol", "")
        protocols = [p.strip() for p in offered.split(",") if p.strip()]
        rk = self.remote_kernel
        limit = self.upstream_max_message_size or sys.maxsize
        try:
            self._upstream = await rk.open_channels(
                self.session_id,
                protocols,
                limit,
                self.upstream_connect_timeout,
                ping_interval=self.upstream_ping_interval,
            )
        except HTTPClientError as e:
            code = e.code if e.code in (401, 403, 404) else 502
            if code == 404:
                raise web.HTTPError(404, f"Kernel does not exist: {rk.kernel_id}") from None
            raise web.HTTPError(
                502, f"runtime {rk.rt.name!r} refused the kernel websocket ({e.code})"
            ) from None
        except (OSError, asyncio.TimeoutError) as e:
            raise web.HTTPError(502, f"runtime {rk.rt.name!r} unreachable: {e}") from None
        # "" tells jupyter_server's handler to pick no subprotocol (legacy), as upstream did.
        self.kernel_ws_protocol = self._upstream.selected_subprotocol or ""
        self._seen = reconnect.SeenIds()
        # If the client's handshake never completes, do not leak the upstream leg.
        asyncio.get_running_loop().call_later(60, self._close_if_unused)

    def _close_if_unused(self):
        if self._pump_task is None and self._upstream is not None:
            self._closed = True
            self._upstream.close()

    async def connect(self):
        self.websocket_handler.set_nodelay(True)
        self.multi_kernel_manager.notify_connect(self.kernel_id)
        RemoteKernelWebsocketConnection._open.add(self)
        self._pump_task = asyncio.ensure_future(self._pump())

    async def _pump(self):
        """Runtime -> client, one frame at a time, waiting for each write to drain; when the
        runtime's leg drops, reconnect (the client's socket stays open meanwhile)."""
        handler = self.websocket_handler
        try:
            while True:
                msg = await self._upstream.read_message()
                if msg is None:
                    over = getattr(self.remote_kernel.rt, "job_over", None)  # cluster jobs
                    ended = await over() if over is not None and not self._closed else None
                    if ended and not self._closed:  # the scheduler's reason, no retrying
                        name = self.remote_kernel.rt.name
                        self._notify("runtime_lost", ended, runtime=name, retrying=False)
                        handler.close(NORMAL_CLOSURE, "runtime ended")
                        return
                    if not self._closed and self.remote_kernel.stopping:
                        self._ended = True  # we stopped it: as stock, the socket stays open
                        return
                    if not self._closed and self._upstream.close_code == NORMAL_CLOSURE:
                        self.remote_kernel.mark_gone()  # ended on the runtime: say so
                        handler.close(NORMAL_CLOSURE, "kernel shut down")
                        return
                    if self._closed or not await self._reconnect():
                        break
                    continue
                if self._seen.is_repeat(msg):
                    continue
                await handler.write_message(msg, binary=isinstance(msg, bytes))
        except (WebSocketClosedError, asyncio.CancelledError):
            return
        except Exception as e:  # noqa: BLE001 - a broken leg closes the other one
            self.log.warning("jupyterlab_accel: relay for kernel %s stopped: %s", self.kernel_id, e)
        if not self._closed:
            handler.close(1011, "runtime closed the kernel connection")

    def _notify(self, kind: str, message: str, **extra) -> None:
        frame = reconnect.notice_frame(self.kernel_ws_protocol or "", kind, message, **extra)
        self.websocket_handler.write_message(frame, binary=isinstance(frame, bytes))

    async def _reconnect(self) -> bool:
        """Reopen the upstream leg with back-off. False: give up (kernel gone, or too long)."""
        rk = self.remote_kernel
        name = rk.rt.name
        if self._queue is None:
            self._queue = deque(maxlen=self.max_queued_messages)
        self.log.warning(
            "jupyterlab_accel: kernel %s lost its link to runtime %r; reconnecting",
            self.kernel_id,
            name,
        )
        self._notify(
            "reconnecting", f"Connection to runtime {name!r} lost; reconnecting...", runtime=name
        )
        loop = asyncio.get_running_loop()
        started, attempt, lost = loop.time(), 0, False
        limit = self.upstream_max_message_size or sys.maxsize
        protocols = [self.kernel_ws_protocol] if self.kernel_ws_protocol else []
        while not self._closed:
            delay = reconnect.backoff(attempt, self.reconnect_backoff, self.reconnect_backoff_max)
            if not lost:  # one attempt right at lost_after, so the verdict is not late
                delay = min(delay, max(0.0, started + self.lost_after - loop.time()))
            await asyncio.sleep(delay)
            attempt += 1
            if self._closed:
                return False
            # before the verdict, attempts on a silent link give up quickly
            timeout = min(5.0, self.upstream_connect_timeout)
            if not lost:
                timeout = min(timeout, max(1.0, self.lost_after))
            try:
                upstream = await rk.open_channels(
                    self.session_id,
                    protocols,
                    limit,
                    timeout,
                    overlap=self.reconnect_overlap,
                    ping_interval=self.upstream_ping_interval,
                )
            except HTTPClientError as e:
                if e.code == 404:  # the runtime is back but the kernel is not
                    return self._kernel_dead(
                        f"The kernel is gone from runtime {name!r} (it "
                        "died or the runtime restarted)."
                    )
                failure = f"HTTP {e.code}"
            except (OSError, asyncio.TimeoutError) as e:
                failure = str(e) or type(e).__name__
            else:
                if self._closed:
                    upstream.close()
                    return False
                self._upstream = upstream
                self._seen.deduping = True
                queued, self._queue = self._queue, None
                for m in queued:
                    self._forward(m)
                self.log.info(
                    "jupyterlab_accel: kernel %s reconnected to runtime %r after %.1fs",
                    self.kernel_id,
                    name,
                    loop.time() - started,
                )
                self._notify("reconnected", f"Reconnected to runtime {name!r}.", runtime=name)
                return True
            elapsed = loop.time() - started
            if not lost and elapsed >= self.lost_after:
                lost = True
                rk.rt.mark_unhealthy(f"unreachable: {failure}")
                self._notify(
                    "runtime_lost",
                    f"Runtime {name!r} is unreachable ({failure}); still trying to reconnect.",
                    runtime=name,
                    retrying=True,
                )
            if elapsed >= self.reconnect_timeout:
                self._notify(
                    "runtime_lost",
                    f"Runtime {name!r} did not come back within {self.reconnect_timeout:g}s.",
                    runtime=name,
                    retrying=False,
                )
                return False
        return False

    def _kernel_dead(self, message: str) -> bool:
        self._notify("kernel_dead", message, runtime=self.remote_kernel.rt.name)
        frame = reconnect.dead_status_frame(self.kernel_ws_protocol or "")
        self.websocket_handler.write_message(frame, binary=isinstance(frame, bytes))
        self.remote_kernel.mark_gone()
        return False

    def _forward(self, incoming_msg) -> None:
        if self._upstream is None:
            return
        try:
            self._upstream.write_message(incoming_msg, binary=isinstance(incoming_msg, bytes))
        except WebSocketClosedError:
            if self._queue is None:  # the pump sees the close and reconnects; keep this one
                self._queue = deque([incoming_msg], maxlen=self.max_queued_messages)

    def handle_incoming_message(self, incoming_msg):
        if self._upstream is None or self._closed or self._ended:
            return
        if self._queue is not None:  # reconnecting: sent once the runtime is back
            self._queue.append(incoming_msg)
            return
        self._forward(incoming_msg)

    def handle_outgoing_message(self, stream, outgoing_msg):
        """Frames from the runtime go out untouched in the pump; nothing is re-serialized."""

    def disconnect(self):
        if self._closed:
            return
        self._closed = True
        RemoteKernelWebsocketConnection._open.discard(self)
        self.multi_kernel_manager.notify_disconnect(self.kernel_id)
        if self._pump_task is not None:
            self._pump_task.cancel()
        if self._upstream is not None:
            self._upstream.close()
