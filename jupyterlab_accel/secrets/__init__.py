"""User secrets: the store (values and per-notebook grants) and the channel that answers
kernels' reads on our runtimes. See docs/secrets.md."""

from .service import SecretsService, service_of
from .store import BadSecret, SecretStore

__all__ = ["BadSecret", "SecretStore", "SecretsService", "service_of"]
