"""Kernel websocket connection: local kernels as stock jupyter_server (plus TCP_NODELAY);
remote kernels relayed to their runtime's /api/kernels/{id}/channels.

The relay opens the upstream leg before answering the client's handshake, offering the
subprotocols the client offered, then gives the client whatever the runtime chose. Both legs
therefore always speak the same protocol (v1.kernel.websocket.jupyter.org where the runtime
speaks it, the legacy JSON protocol otherwise), and frames pass through untouched: no
decoding, no re-encoding. Upstream has no message size cap; reads wait for the client's
writes to drain, so memory stays flat however much output flows."""
from __future__ import annotations

import asyncio
import sys

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado import web
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClosedError
from traitlets import Float, Int

from .remote_kernel import RemoteKernel


class AccelWebsocketConnection(ZMQChannelsWebsocketConnection):
    """Stock ZMQ bridge for local kernels; a frame relay for kernels on runtimes."""

    upstream_max_message_size = Int(
        0, config=True,
        help="Largest message (bytes) accepted from a runtime; 0 = no limit. The stock 10 MiB "
        "cap drops large outputs (a 50 MB image or dataframe).")
    upstream_connect_timeout = Float(
        20, config=True, help="Seconds to open the websocket to a runtime.")

    _upstream = None
    _pump_task = None
    _closed = False

    @property
    def remote(self) -> bool:
        return isinstance(self.kernel_manager, RemoteKernel)

    # -- handshake ----------------------------------------------------------------------
    async def prepare(self):
        if not self.remote:
            return await super().prepare()
        offered = self.websocket_handler.request.headers.get("Sec-WebSocket-Protocol", "")
        protocols = [p.strip() for p in offered.split(",") if p.strip()]
        rk: RemoteKernel = self.kernel_manager
        limit = self.upstream_max_message_size or sys.maxsize
        try:
            self._upstream = await rk.open_channels(self.session_id, protocols, limit,
                                                    self.upstream_connect_timeout)
        except HTTPClientError as e:
            code = e.code if e.code in (401, 403, 404) else 502
            if code == 404:
                raise web.HTTPError(404, f"Kernel does not exist: {rk.kernel_id}") from None
            raise web.HTTPError(502, f"runtime {rk.rt.name!r} refused the kernel websocket "
                                f"({e.code})") from None
        except (OSError, asyncio.TimeoutError) as e:
            raise web.HTTPError(502, f"runtime {rk.rt.name!r} unreachable: {e}") from None
        # "" tells jupyter_server's handler to pick no subprotocol (legacy), as upstream did.
        self.kernel_ws_protocol = self._upstream.selected_subprotocol or ""
        # If the client's handshake never completes, do not leak the upstream leg.
        asyncio.get_running_loop().call_later(60, self._close_if_unused)

    def _close_if_unused(self):
        if self._pump_task is None and self._upstream is not None:
            self._closed = True
            self._upstream.close()

    async def connect(self):
        self.websocket_handler.set_nodelay(True)
        if not self.remote:
            return await super().connect()
        self.multi_kernel_manager.notify_connect(self.kernel_id)
        self._pump_task = asyncio.ensure_future(self._pump())

    async def _pump(self):
        """Runtime -> client, one frame at a time, waiting for each write to drain."""
        handler = self.websocket_handler
        try:
            while True:
                msg = await self._upstream.read_message()
                if msg is None:
                    break
                await handler.write_message(msg, binary=isinstance(msg, bytes))
        except (WebSocketClosedError, asyncio.CancelledError):
            return
        except Exception as e:  # noqa: BLE001 - a broken leg closes the other one
            self.log.warning("jupyterlab_accel: relay for kernel %s stopped: %s", self.kernel_id, e)
        if not self._closed:
            # The runtime closed the socket (kernel gone, runtime down): the client reconnects.
            handler.close(1011, "runtime closed the kernel connection")

    def handle_incoming_message(self, incoming_msg):
        if not self.remote:
            return super().handle_incoming_message(incoming_msg)
        if self._upstream is None or self._closed:
            return
        try:
            self._upstream.write_message(incoming_msg, binary=isinstance(incoming_msg, bytes))
        except WebSocketClosedError:
            self.websocket_handler.close(1011, "runtime closed the kernel connection")

    def disconnect(self):
        if not self.remote:
            return super().disconnect()
        if self._closed:
            return
        self._closed = True
        self.multi_kernel_manager.notify_disconnect(self.kernel_id)
        if self._pump_task is not None:
            self._pump_task.cancel()
        if self._upstream is not None:
            self._upstream.close()
