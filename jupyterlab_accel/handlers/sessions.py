"""GET /accel/sessions, DELETE /accel/sessions/{kernel_id}, POST /accel/kernels/{id}/keepalive."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..overview import all_sessions, find_runtime_of
from .base import NOT_SUPPORTED, AccelHandler


class SessionsHandler(AccelHandler):
    @web.authenticated
    @authorized
    async def get(self):
        self.write_json(
            await all_sessions(self.registry, self.kernel_manager, self.session_manager)
        )


class SessionHandler(AccelHandler):
    @web.authenticated
    @authorized
    async def delete(self, kernel_id):
        km, sm = self.kernel_manager, self.session_manager
        if kernel_id in km:
            await km.shutdown_kernel(kernel_id)
        else:
            rt = await find_runtime_of(self.registry, km, kernel_id)
            if rt is None:
                raise web.HTTPError(404, f"no kernel {kernel_id!r} on any runtime")
            await self.relay_status(rt, f"/api/kernels/{kernel_id}", "DELETE")
        for s in await sm.list_sessions():  # drop this server's sessions of that kernel
            if (s.get("kernel") or {}).get("id") == kernel_id:
                sm.cursor.execute("DELETE FROM session WHERE session_id=?", (s["id"],))
        self.set_status(204)
        self.finish()

    async def relay_status(self, rt, path, method):
        try:
            resp = await rt.fetch(self.registry.http, path, method, timeout=60)
        except OSError as e:
            raise web.HTTPError(502, f"runtime {rt.name!r} unreachable: {e}") from None
        if resp.code not in (204, 404):
            raise web.HTTPError(resp.code if resp.code < 600 else 502, "runtime refused")


class KeepaliveHandler(AccelHandler):
    @web.authenticated
    @authorized
    async def post(self, kernel_id):
        rt = await find_runtime_of(self.registry, self.kernel_manager, kernel_id)
        if rt is None:
            raise web.HTTPError(404, f"no kernel {kernel_id!r} on any runtime")
        await self.registry.check(rt)
        if hasattr(rt, "keepalive"):  # a cluster job: says its time limit cannot be extended
            self.write_json(await rt.keepalive(kernel_id))
            return
        if not rt.supports_accel:
            raise web.HTTPError(501, NOT_SUPPORTED)
        await self.relay_json(rt, f"/api/accel/kernels/{kernel_id}/keepalive", "POST", body=b"")
