"""Sessions that survive a server restart: jupyter_server's SessionManager on a sqlite file in
the state dir (mode 0600) instead of :memory:. A session whose kernel is gone (a local kernel
of the previous server, a remote kernel culled meanwhile) is dropped on first access."""

from __future__ import annotations

import sqlite3

from jupyter_core.utils import ensure_async
from jupyter_server.services.sessions.sessionmanager import SessionManager
from tornado import web
from traitlets import default

from .kernels import AccelMappingKernelManager
from .state import AccelState


class AccelSessionManager(SessionManager):
    """Persistent sessions; remote kernels are checked on their runtime."""

    @default("database_filepath")
    def _default_database_filepath(self):
        return str(AccelState(parent=self).private_file("sessions.db"))

    def __init__(self, **kw):
        super().__init__(**kw)
        self._started_for: dict[str, str] = {}  # session id -> kernel started for it

    async def start_kernel_for_session(
        self, session_id, path, name, type, kernel_name, kernel_id=None
    ):
        kernel_id = await super().start_kernel_for_session(
            session_id, path, name, type, kernel_name, kernel_id
        )
        self._started_for[session_id] = kernel_id
        return kernel_id

    async def save_session(self, session_id, path=None, name=None, type=None, kernel_id=None):
        """A session that cannot be saved (state folder full) leaves no kernel behind."""
        started = self._started_for.pop(session_id, None)
        try:
            return await super().save_session(
                session_id, path=path, name=name, type=type, kernel_id=kernel_id
            )
        except (sqlite3.Error, OSError) as e:
            if started is not None and started == kernel_id:
                await ensure_async(self.kernel_manager.shutdown_kernel(kernel_id, now=True))
            raise web.HTTPError(507, f"could not save the session: {e}") from None

    async def list_sessions(self):
        """One GET /api/kernels per runtime first: each session's check then reads that fresh
        model instead of asking its runtime kernel by kernel."""
        km = self.kernel_manager
        if isinstance(km, AccelMappingKernelManager):
            await km.reattach()
            await km.refresh_remote()
        return await super().list_sessions()

    async def kernel_culled(self, kernel_id: str) -> bool:
        km = self.kernel_manager
        if isinstance(km, AccelMappingKernelManager):  # asks the runtime of a remote kernel
            return await km.kernel_gone(kernel_id)
        return await ensure_async(super().kernel_culled(kernel_id))
