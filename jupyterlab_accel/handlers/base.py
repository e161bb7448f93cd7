"""Shared plumbing of the /accel handlers: the registry and managers from settings, JSON
errors, the "not supported by this runtime" answer."""

from __future__ import annotations

import json

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.websocket import WebSocketHandler

from ..runtime import BadAnswer, Runtime

AUTH_RESOURCE = "accel"
NOT_SUPPORTED = "not supported by this runtime"


MAX_JSON_BODY = 1 << 20  # bytes: every /accel JSON body is small


def refuse_big_body(request, limit: int) -> None:
    """413 with a message when the declared body is over `limit` bytes."""
    try:
        size = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise web.HTTPError(400, "Content-Length is not a number") from None
    if size > limit:
        raise web.HTTPError(413, f"request body of {size} bytes is over the {limit}-byte limit")


class AccelHandler(APIHandler):
    auth_resource = AUTH_RESOURCE
    max_body_size = MAX_JSON_BODY

    async def prepare(self):
        await ensure_async(super().prepare())
        refuse_big_body(self.request, self.max_body_size)

    @property
    def registry(self):
        return self.settings["accel_registry"]

    @property
    def hub(self):
        return self.settings["accel_metrics_hub"]

    def json_body(self):
        try:
            return json.loads(self.request.body or b"null")
        except ValueError:
            raise web.HTTPError(400, "request body is not valid JSON") from None

    async def runtime(self, name: str, *, healthy: bool = False, accel: bool = False) -> Runtime:
        rt = self.registry.get(name)
        if rt is None:
            raise web.HTTPError(404, f"no runtime named {name!r}")
        if healthy or accel:
            await self.registry.check(rt)
            if not rt.healthy:
                raise web.HTTPError(503, f"runtime {name!r} is unavailable: {rt.error}")
            if accel and not rt.supports_accel:
                raise web.HTTPError(501, NOT_SUPPORTED)
        return rt

    def write_json(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    async def relay_json(
        self, rt: Runtime, path: str, method: str = "GET", body=None, **kw
    ) -> None:
        """A small JSON request passed through; the runtime's status and body come back."""
        try:
            resp = await rt.api(path, method, body=body, timeout=60, **kw)
        except BadAnswer as e:
            raise web.HTTPError(502, str(e)) from None
        except OSError as e:
            rt.mark_unhealthy(f"unreachable: {e}")
            raise web.HTTPError(502, f"runtime {rt.name!r} unreachable: {e}") from None
        if resp.code == 404 and not rt.supports_accel:
            raise web.HTTPError(501, NOT_SUPPORTED)
        self.set_status(resp.code)
        if resp.code == 204 or not resp.body:
            self.finish()
            return
        self.set_header("Content-Type", resp.headers.get("Content-Type", "application/json"))
        self.finish(resp.body)


class RuntimeWebsocketHandler(WebSocketMixin, WebSocketHandler, JupyterHandler):
    """A websocket on a runtime's route: authorized for `action` and the runtime known and
    checked before the handshake (and so before anything goes upstream)."""

    auth_resource = AUTH_RESOURCE

    def set_default_headers(self):
        """No API headers on a websocket upgrade."""

    async def authorized_runtime(self, name: str, action: str) -> Runtime:
        if not await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, action, AUTH_RESOURCE)
        ):
            raise web.HTTPError(403)
        registry = self.settings["accel_registry"]
        rt = registry.get(name)
        if rt is None:
            raise web.HTTPError(404, f"no runtime named {name!r}")
        await registry.check(rt)
        return rt
