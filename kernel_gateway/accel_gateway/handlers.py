"""Thin /api/accel handlers over the gateway's managers (see docs/architecture.md)."""

from __future__ import annotations

import json
import uuid

from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler, path_regex
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.services.contents.handlers import ContentsHandler
from jupyter_server.services.kernels.handlers import MainKernelHandler
from jupyter_server.utils import ensure_async, url_escape, url_path_join
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

AUTH_RESOURCE = "accel"
MAX_JSON_BODY = 1 << 20  # bytes: /api/accel and kernel-start bodies are small
MAX_CONTENTS_BODY = 256 << 20  # contents saves and upload chunks (JupyterLab sends 1 MiB chunks)


def refuse_big_body(request, limit: int) -> None:
    """413 with a message when the declared body is over `limit` bytes."""
    try:
        size = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise web.HTTPError(400, "Content-Length is not a number", reason="bad_request") from None
    if size > limit:
        raise web.HTTPError(
            413, f"request body of {size} bytes is over the {limit}-byte limit", reason="too_large"
        )


class BodyLimit(APIHandler):
    """Base for API handlers (mixed in before MainKernelHandler or ContentsHandler, which are
    APIHandlers too): bodies over `max_body_size` are refused with 413."""

    max_body_size = MAX_JSON_BODY

    # APIHandler.prepare (the next in line) takes no `_redirect_to_login`, unlike JupyterHandler's;
    # jupyter_server ignores the same override error there.
    async def prepare(self):  # type: ignore[override]
        await ensure_async(super().prepare())
        refuse_big_body(self.request, self.max_body_size)


KERNEL_ID = r"(?P<kernel_id>\w+-\w+-\w+-\w+-\w+)"


class AccelHandler(BodyLimit, APIHandler):
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


class KernelStartHandler(BodyLimit, MainKernelHandler):
    """POST /api/kernels that honours the body's `env` (KERNEL_* names), as stock gateway
    clients send it; jupyter_server's own handler drops it."""

    @web.authenticated
    @authorized
    async def post(self):
        km = self.kernel_manager
        model = json_body(self)  # 400 on malformed JSON
        if model is None:
            model = {}
        if not isinstance(model, dict):
            raise web.HTTPError(400, "The body must be a JSON object", reason="bad_request")
        for key in ("name", "path", "kernel_id"):
            if model.get(key) is not None and not isinstance(model[key], str):
                raise web.HTTPError(400, f"'{key}' must be a string", reason="bad_request")
        if not isinstance(model.get("make_path", False), bool):
            raise web.HTTPError(400, "'make_path' must be true or false", reason="bad_request")
        if model.get("kernel_id") is not None:
            try:
                uuid.UUID(model["kernel_id"])
            except ValueError:
                raise web.HTTPError(
                    400, "'kernel_id' must be a UUID", reason="bad_request"
                ) from None
        name = model.get("name") or km.default_kernel_name
        try:
            await ensure_async(self.kernel_spec_manager.get_kernel_spec(name))
        except KeyError:  # NoSuchKernel
            raise web.HTTPError(
                404, f"no kernel spec named {name!r}", reason="no_such_kernel"
            ) from None
        kernel_id = await ensure_async(
            km.start_kernel(
                kernel_name=name,
                path=model.get("path"),
                make_path=model.get("make_path", False),
                kernel_id=model.get("kernel_id"),
                env=km.client_env(model.get("env")),
            )
        )
        model = await ensure_async(km.kernel_model(kernel_id))
        self.set_header(
            "Location", url_path_join(self.base_url, "api", "kernels", url_escape(kernel_id))
        )
        self.set_status(201)
        self.finish(json.dumps(model, default=str))


def json_body(handler):
    """The request's JSON body (None when empty); 400, never 500, when it is not JSON."""
    try:
        return handler.get_json_body()
    except UnicodeDecodeError:
        raise web.HTTPError(400, "The body is not UTF-8 JSON", reason="bad_request") from None


def check_contents_model(model, method: str) -> None:
    """Shapes jupyter_server's contents handler assumes without checking (else a 500)."""
    if model is None and method != "PATCH":
        return
    if not isinstance(model, dict):
        raise web.HTTPError(400, "The body must be a JSON object", reason="bad_request")
    for key in ("path", "copy_from", "type", "format", "ext", "name"):
        if model.get(key) is not None and not isinstance(model[key], str):
            raise web.HTTPError(400, f"'{key}' must be a string", reason="bad_request")
    if model.get("chunk") is not None and type(model["chunk"]) is not int:
        raise web.HTTPError(400, "'chunk' must be an integer", reason="bad_request")
    if "ext" in model and not isinstance(model["ext"], str):  # null is passed on as None
        raise web.HTTPError(400, "'ext' must be a string", reason="bad_request")
    content, kind = model.get("content"), model.get("type")
    if content is not None and kind == "file" and not isinstance(content, str):
        raise web.HTTPError(400, "a file's 'content' must be a string", reason="bad_request")
    if content is not None and kind == "notebook" and not isinstance(content, dict):
        raise web.HTTPError(400, "a notebook's 'content' must be an object", reason="bad_request")
    if method == "PATCH" and not model.get("path"):
        raise web.HTTPError(400, "'path' (the new name) is required", reason="bad_request")
    if (
        method == "PUT"
        and kind in ("file", "notebook")
        and content is None
        and not model.get("copy_from")
    ):
        raise web.HTTPError(400, "No file content provided", reason="bad_request")


class CheckedContentsHandler(BodyLimit, ContentsHandler):
    """/api/contents with request bodies checked first: a wrong shape is a 400, not a 500."""

    max_body_size = MAX_CONTENTS_BODY

    async def prepare(self):
        await super().prepare()
        if self.current_user and self.request.method in ("PUT", "POST", "PATCH"):
            check_contents_model(json_body(self), self.request.method)


class AccelWebsocketHandler(WebSocketMixin, WebSocketHandler, JupyterHandler):
    """A /api/accel websocket: authenticated and authorized for `ws_action` at the handshake,
    TCP_NODELAY once open."""

    auth_resource = AUTH_RESOURCE
    ws_action = "read"

    @ws_authenticated
    async def get(self, *args, **kwargs):
        ok = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, self.ws_action, AUTH_RESOURCE)
        )
        if not ok:
            raise web.HTTPError(403)
        await super().get(*args, **kwargs)

    def open(self, *args, **kwargs):
        super().open()
        self.set_nodelay(True)


class MetricsStreamHandler(AccelWebsocketHandler):
    """One JSON sample per interval, from the gateway's single sampler."""

    def initialize(self, ctx):
        self.ctx = ctx

    def open(self, *args, **kwargs):
        super().open()
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
    ctx.handlers.extend(
        [
            (r"/api/accel/runtime", RuntimeHandler, {"ctx": ctx}),
            (r"/api/accel/kernels", KernelsHandler, {"ctx": ctx}),
            (rf"/api/accel/kernels/{KERNEL_ID}/keepalive", KeepaliveHandler, {"ctx": ctx}),
            (r"/api/kernels/?", KernelStartHandler),
            (rf"/api/contents{path_regex}", CheckedContentsHandler),
        ]
    )


def setup_metrics(ctx) -> None:
    ctx.features.extend(["metrics", "metrics_stream"])
    ctx.handlers.extend(
        [
            (r"/api/accel/metrics", MetricsHandler, {"ctx": ctx}),
            (r"/api/accel/metrics/stream", MetricsStreamHandler, {"ctx": ctx}),
        ]
    )
