"""GET /accel/kernels/{kernel_id}/filesync: where the notebook's files stand on the kernel's
runtime (synced | syncing | conflict | over_cap | unsupported | error), with a log of what moved;
POST syncs now (both ways)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import AccelHandler


class FileSyncHandler(AccelHandler):
    @property
    def file_sync(self):
        return self.settings.get("accel_file_sync")

    def _status(self, kernel_id) -> dict:
        status = self.file_sync.status(kernel_id) if self.file_sync else None
        if status is not None:
            return status
        if kernel_id in self.kernel_manager:
            return {"state": "off", "message": "this kernel's files are not synced"}
        raise web.HTTPError(404, f"no kernel {kernel_id!r}")

    @web.authenticated
    @authorized
    def get(self, kernel_id):
        self.write_json(self._status(kernel_id))

    @web.authenticated
    @authorized
    async def post(self, kernel_id):
        status = self._status(kernel_id)
        if status.get("state") in ("off", "unsupported"):
            self.write_json(status)
            return
        try:
            self.write_json(await self.file_sync.sync_now(kernel_id))
        except Exception as e:
            raise web.HTTPError(502, f"file sync failed: {e}") from None
