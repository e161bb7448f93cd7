"""Websocket /accel/runtimes/{name}/metrics/stream: joins the runtime's single upstream stream."""

from __future__ import annotations

from jupyter_server.auth.decorator import ws_authenticated
from tornado import web

from .base import NOT_SUPPORTED, RuntimeWebsocketHandler


class MetricsStreamHandler(RuntimeWebsocketHandler):
    @ws_authenticated
    async def get(self, name):
        rt = await self.authorized_runtime(name, "read")
        if rt.healthy and not rt.supports_accel:
            raise web.HTTPError(501, NOT_SUPPORTED)
        self.rt = rt
        await super().get(name)

    def open(self, name):
        super().open()
        self.set_nodelay(True)
        self.settings["accel_metrics_hub"].subscribe(self.rt, self)

    def on_message(self, message):
        pass  # watchers only listen

    def on_close(self):
        self.settings["accel_metrics_hub"].unsubscribe(self.rt.name, self)
