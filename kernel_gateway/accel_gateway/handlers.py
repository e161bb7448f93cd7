"""Thin /api/accel handlers over the gateway's managers (see docs/architecture.md)."""
from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.services.kernels.handlers import MainKernelHandler
from jupyter_server.utils import ensure_async, url_escape, url_path_join
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

AUTH_RESOURCE = "accel"
KERNEL_ID = r"(?P<kernel_id>\w+-\w+-\w+-\w+-\w+)"


class AccelHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    def initialize(self, ctx):
        self.ctx = ctx


class RuntimeHandler(AccelHandler):
    @web.authenticated
    @authorized
    def get(self):
        c = self.ctx
        self.finish(c.runtime.describe(c.backend, c.allocator, c.limits, c.workspace, c.features))


class MetricsHandler(AccelHandler):
    @web.authenticated
    @authorized
    async def get(self):
        self.finish(await self.ctx.sampler.snapshot())


class KernelsHandler(AccelHandler):
    @web.authenticated
    @authorized
    def get(self):
        km = self.ctx.kernel_manager
        self.finish(json.dumps([km.accel_model(k) for k in km.list_kernel_ids()]))


class KeepaliveHandler(AccelHandler):
    @web.authenticated
    @authorized
    def post(self, kernel_id):
        km = self.ctx.kernel_manager
        km.keepalive(kernel_id)  # 404 for an unknown kernel
        self.finish(km.accel_model(kernel_id))


class KernelStartHandler(MainKernelHandler):
    """POST /api/kernels that honours the body's `env` (KERNEL_* names), as stock gateway
    clients send it; jupyter_server's own handler drops it."""

    @web.authenticated
    @authorized
    async def post(self):
        km = self.kernel_manager
        model = self.get_json_body()  # 400 on malformed JSON
        if model is None:
            model = {}
        if not isinstance(model, dict):
            raise web.HTTPError(400, "The body must be a JSON object", reason="bad_request")
        kernel_id = await ensure_async(km.start_kernel(
            kernel_name=model.get("name") or km.default_kernel_name, path=model.get("path"),
            kernel_id=model.get("kernel_id"), env=km.client_env(model.get("env"))))
        model = await ensure_async(km.kernel_model(kernel_id))
        self.set_header("Location", url_path_join(self.base_url, "api", "kernels",
                                                  url_escape(kernel_id)))
        self.set_status(201)
        self.finish(json.dumps(model, default=str))


class MetricsStreamHandler(WebSocketMixin, WebSocketHandler, JupyterHandler):
    """One JSON sample per interval, from the gateway's single sampler."""

    auth_resource = AUTH_RESOURCE

    def initialize(self, ctx):
        self.ctx = ctx

    @ws_authenticated
    async def get(self, *args, **kwargs):
        ok = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "read", AUTH_RESOURCE))
        if not ok:
            raise web.HTTPError(403)
        await super().get(*args, **kwargs)

    def open(self, *args, **kwargs):
        super().open()
        self.set_nodelay(True)
        self.ctx.sampler.watch(self._send)

    def _send(self, sample: dict) -> None:
        try:
            self.write_message(json.dumps(sample))
        except WebSocketClosedError:
            self.ctx.sampler.unwatch(self._send)

    def on_message(self, message):
        pass  # the stream is one-way

    def on_close(self):
        self.ctx.sampler.unwatch(self._send)


def setup_core(ctx) -> None:
    """Runtime description, kernel list and keep-alive, device requests at kernel start."""
    ctx.features.extend(["runtime", "kernels", "keepalive", "allocation", "limits", "notices"])
    ctx.handlers.extend([
        (r"/api/accel/runtime", RuntimeHandler, {"ctx": ctx}),
        (r"/api/accel/kernels", KernelsHandler, {"ctx": ctx}),
        (rf"/api/accel/kernels/{KERNEL_ID}/keepalive", KeepaliveHandler, {"ctx": ctx}),
        (r"/api/kernels/?", KernelStartHandler),
    ])


def setup_metrics(ctx) -> None:
    ctx.features.extend(["metrics", "metrics_stream"])
    ctx.handlers.extend([
        (r"/api/accel/metrics", MetricsHandler, {"ctx": ctx}),
        (r"/api/accel/metrics/stream", MetricsStreamHandler, {"ctx": ctx}),
    ])
