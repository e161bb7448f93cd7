"""Runtime providers: where runtimes come from (a URL, an SSH host, a cluster scheduler)."""

from .base import Endpoint, ProviderError, RuntimeProvider, State, Status

__all__ = ["Endpoint", "ProviderError", "RuntimeProvider", "State", "Status"]
