"""GET /accel/terminals: every terminal on every runtime (for Manage sessions).

Each is {runtime, runtime_display_name, name, last_activity}; terminating one is the runtime's
own `DELETE /accel/runtimes/{name}/api/terminals/{term}` (handlers/terminals.py)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..overview import all_terminals
from .base import AccelHandler


class AllTerminalsHandler(AccelHandler):
    @web.authenticated
    @authorized
    async def get(self):
        self.write_json(await all_terminals(self.registry))
