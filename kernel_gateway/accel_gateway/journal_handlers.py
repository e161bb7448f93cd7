"""GET /api/accel/kernels/{id}/journal?since=SEQ: what a client missed (journal.py)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from .handlers import KERNEL_ID, AccelHandler
from .journal import dumps


class JournalHandler(AccelHandler):
    @web.authenticated
    @authorized
    def get(self, kernel_id):
        raw = self.get_argument("since", "0")
        try:
            since = int(raw)
            if since < 0:
                raise ValueError
        except ValueError:
            raise web.HTTPError(
                400, "'since' must be a non-negative integer", reason="bad_request"
            ) from None
        km = self.ctx.kernel_manager
        if kernel_id not in km:
            raise web.HTTPError(404, f"Kernel does not exist: {kernel_id}")
        journal = self.ctx.journal.get(kernel_id)
        if journal is None:
            raise web.HTTPError(404, f"No output journal for kernel {kernel_id} (disabled)")
        self.set_header("Content-Type", "application/json")
        self.finish(dumps(journal.to_json(since)))


def setup_journal(ctx) -> None:
    """Per-kernel output journal; kernel websockets replay from it on reconnect."""
    if ctx.journal.enabled:  # the kernel manager's (AccelKernelManager.journal)
        ctx.features.append("journal")
    ctx.handlers.append((rf"/api/accel/kernels/{KERNEL_ID}/journal", JournalHandler, {"ctx": ctx}))
