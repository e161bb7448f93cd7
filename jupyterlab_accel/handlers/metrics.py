"""Websocket /accel/runtimes/{name}/metrics/stream: joins the runtime's single upstream stream."""

from __future__ import annotations

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.websocket import WebSocketHandler

from .base import AUTH_RESOURCE, NOT_SUPPORTED


class MetricsStreamHandler(WebSocketMixin, WebSocketHandler, JupyterHandler):
    auth_resource = AUTH_RESOURCE

    def set_default_headers(self):
        """No API headers on a websocket upgrade."""

    @ws_authenticated
    async def get(self, name):
        if not await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "read", AUTH_RESOURCE)
        ):
            raise web.HTTPError(403)
        registry = self.settings["accel_registry"]
        rt = registry.get(name)
        if rt is None:
            raise web.HTTPError(404, f"no runtime named {name!r}")
        await registry.check(rt)
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
