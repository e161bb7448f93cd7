"""GET /accel/kernels/{kernel_id}/journal?since=SEQ: the runtime's output journal of a kernel
(what the browser missed while away), passed through from /api/accel/kernels/{id}/journal."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..overview import find_runtime_of
from .base import NOT_SUPPORTED, AccelHandler


class JournalHandler(AccelHandler):
    @web.authenticated
    @authorized
    async def get(self, kernel_id):
        since = self.get_argument("since", "0")
        if not since.isdigit():
            raise web.HTTPError(400, "'since' must be a non-negative integer")
        rt = await find_runtime_of(self.registry, self.kernel_manager, kernel_id)
        if rt is None:
            raise web.HTTPError(404, f"no kernel {kernel_id!r} on any runtime")
        await self.registry.check(rt)
        if not rt.healthy:
            raise web.HTTPError(503, f"runtime {rt.name!r} is unavailable: {rt.error}")
        if not rt.supports_accel:
            raise web.HTTPError(501, NOT_SUPPORTED)
        await self.relay_json(rt, f"/api/accel/kernels/{kernel_id}/journal?since={since}")
