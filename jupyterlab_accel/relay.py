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
decoding, no re-encoding. A large binary frame is read from the runtime's socket straight into
one buffer (tornado's read_into, not its read buffer) and written to the client's socket from
that buffer, so its payload is never copied in Python. Upstream has no message size cap; reads
wait for the client's writes to drain, so memory stays flat however much output flows.

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

from accel_gateway.journal_ws import send_pieces, ws_header
from jupyter_server.services.kernels.connection.base import BaseKernelWebsocketConnection
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado import web
from tornado.httpclient import HTTPClientError
from tornado.iostream import StreamClosedError
from tornado.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketProtocol13,
)
from traitlets import Float, Int

from . import reconnect
from .remote_kernel import RemoteKernelManager

# The close code of a websocket that ended on purpose (RFC 6455 "normal closure"): our gateway
# closes a kernel's websockets with it when the kernel ends.
NORMAL_CLOSURE = 1000
READ_INTO_BYTES = 64 * 1024  # upstream payloads this big are read into a buffer of their own


SPARE_BUFFERS = 4  # reused read buffers kept per upstream leg...
SPARE_MAX_BYTES = 4 * 1024 * 1024  # ...each at most this big (a larger frame gets its own)


class _UpstreamProtocol(WebSocketProtocol13):
    """The runtime leg's websocket protocol, reading a large payload with `read_into` (one
    buffer, filled from the socket) instead of through the stream's read buffer, which copies
    it twice (into the buffer, out as bytes). A large binary message then arrives as a
    memoryview of that buffer; the pump hands the buffer back (recycle) once the client's
    socket has taken it, so the next frame reuses its memory (a fresh 1 MB bytearray costs
    its zeroing and page faults). Text, compressed and fragmented messages are as tornado
    makes them."""

    _spare: list[bytearray] | None = None
    _last_read = 0  # size of the previous (small) read: 4 right before a payload is its mask

    async def _read_bytes(self, n: int) -> bytes:
        # A large payload is read right after its length (2 or 8 bytes) or, in a masked frame
        # (no server masks, but tornado accepts it), its mask: that one tornado unmasks with
        # a function that takes bytes only.
        masked, self._last_read = self._last_read == 4, n
        if n < READ_INTO_BYTES or masked:
            return await super()._read_bytes(n)
        buf = self._buffer(n)
        view = memoryview(buf)[:n]
        await self.stream.read_into(view)  # type: ignore[arg-type]  # any writable buffer
        self._wire_bytes_in += n
        return view  # type: ignore[return-value]  # bytes-like: tornado slices, joins, decodes

    def _buffer(self, n: int) -> bytearray:
        spare = self._spare
        if spare:
            fits = [b for b in spare if len(b) >= n]
            if fits:
                buf = min(fits, key=len)
                spare.remove(buf)
                return buf
        return bytearray(-(-n // READ_INTO_BYTES) * READ_INTO_BYTES)  # rounded up: reusable

    def recycle(self, frame) -> None:
        """Take back the buffer under a frame this protocol delivered, once nothing uses it."""
        if not isinstance(frame, memoryview) or not isinstance(frame.obj, bytearray):
            return
        buf = frame.obj
        frame.release()
        if len(buf) > SPARE_MAX_BYTES:
            return
        if self._spare is None:
            self._spare = []
        if len(self._spare) < SPARE_BUFFERS and all(b is not buf for b in self._spare):
            self._spare.append(buf)

    def _handle_message(self, opcode: int, data: bytes):
        if isinstance(data, memoryview) and (opcode != 0x2 or self._frame_compressed):
            data = data.tobytes()  # text is decoded, compressed data inflated: as tornado
        return super()._handle_message(opcode, data)


def read_large_frames_into_buffers(conn) -> None:
    """Switch a tornado websocket client connection to _UpstreamProtocol (its frame loop
    picks it up from the next read); anything but tornado's own protocol is left alone."""
    proto = getattr(conn, "protocol", None)
    if type(proto) is WebSocketProtocol13:
        proto.__class__ = _UpstreamProtocol


def recycle_frame(conn, frame) -> None:
    """Give a delivered frame's buffer back to the leg that read it (see _UpstreamProtocol)."""
    proto = getattr(conn, "protocol", None)
    if isinstance(proto, _UpstreamProtocol):
        proto.recycle(frame)


async def write_frame(handler, frame) -> None:
    """`await handler.write_message(frame, binary=not a str)` without copying a large
    payload: on a plain tornado websocket (no compression, not masking) the frame header and
    the payload (a binary frame as it is, a text frame UTF-8 encoded) go to the stream
    together (send_pieces), the payload as a view. Raises WebSocketClosedError like
    write_message."""
    binary = not isinstance(frame, str)
    proto = getattr(handler, "ws_connection", None)
    if (
        len(frame) < READ_INTO_BYTES
        or type(proto) is not WebSocketProtocol13
        or proto._compressor is not None
        or proto.mask_outgoing
    ):
        await handler.write_message(bytes(frame) if binary else frame, binary=binary)
        return
    if proto.is_closing():
        raise WebSocketClosedError()
    data = frame if binary else frame.encode("utf-8")
    head = ws_header(len(data), binary)
    proto._message_bytes_out += len(data)
    proto._wire_bytes_out += len(head) + len(data)
    try:
        await send_pieces(proto.stream, [head, data])
    except StreamClosedError:
        raise WebSocketClosedError() from None


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
        read_large_frames_into_buffers(self._upstream)
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
                if not self._seen.is_repeat(msg):
                    await write_frame(handler, msg)  # returns once the socket took it all
                recycle_frame(self._upstream, msg)
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
                read_large_frames_into_buffers(upstream)
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
        self.remote_kernel.refreshed_at = 0.0  # a request went in: its cached model is stale
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
