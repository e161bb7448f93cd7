"""The gateway's kernel manager: jupyter_server's, plus device allocation and limits."""
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager


class AccelKernelManager(AsyncMappingKernelManager):
    """Kernels of this host. Device allocation and limits hook in here."""
