"""Sessions that survive a server restart: jupyter_server's SessionManager on a sqlite file in
the state dir (mode 0600) instead of :memory:. A session whose kernel is gone (a local kernel
of the previous server, a remote kernel culled meanwhile) is dropped on first access."""

from __future__ import annotations

from jupyter_core.utils import ensure_async
from jupyter_server.services.sessions.sessionmanager import SessionManager
from traitlets import default

from .kernels import AccelMappingKernelManager
from .state import AccelState


class AccelSessionManager(SessionManager):
    """Persistent sessions; remote kernels are checked on their runtime."""

    @default("database_filepath")
    def _default_database_filepath(self):
        return str(AccelState(parent=self).private_file("sessions.db"))

    async def kernel_culled(self, kernel_id: str) -> bool:
        km = self.kernel_manager
        if isinstance(km, AccelMappingKernelManager):  # asks the runtime of a remote kernel
            return await km.kernel_gone(kernel_id)
        return await ensure_async(super().kernel_culled(kernel_id))
