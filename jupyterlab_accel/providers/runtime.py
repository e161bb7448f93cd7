"""A registry runtime whose gateway a provider makes exist.

To the registry and the kernel routing it is a `Runtime` like any other (URL, token, health);
the URL and token come from the provider's `Endpoint`, health is "unavailable: <provider
message>" until the provider is ready, and listings carry the provider's state as `provider`."""

from __future__ import annotations

import asyncio
from importlib import import_module

from ..runtime import Runtime, RuntimeError_, check_url
from .base import ProviderError, RuntimeProvider, State

# kind -> provider class, for runtimes stored in the state file (add new providers here).
PROVIDER_CLASSES = {
    "ssh": "jupyterlab_accel.providers.ssh.SSHProvider",
}
# Stands for "no endpoint yet" (port 9 is discard; never contacted: health is the provider's).
PENDING_URL = "http://127.0.0.1:9"


def provider_class(kind: str) -> type[RuntimeProvider]:
    path = PROVIDER_CLASSES.get(kind)
    if path is None:
        raise RuntimeError_(f"unknown runtime provider {kind!r}")
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


class ProvidedRuntime(Runtime):
    """A removable runtime backed by a provider (SSH host, SLURM job, ...)."""

    def __init__(
        self,
        provider: RuntimeProvider,
        *,
        display_name: str | None = None,
        reattach: bool = False,
        **kw,
    ):
        self.provider = provider
        endpoint = provider.endpoint
        super().__init__(
            provider.name,
            endpoint.url if endpoint else PENDING_URL,
            display_name=display_name,
            removable=True,
            price_per_hour=provider.price_per_hour,
            **kw,
        )
        self._follow(provider)
        provider.on_change(self._follow)
        self._reattach_tried = not reattach  # stored runtimes re-attach at their first check

    def _follow(self, provider: RuntimeProvider) -> None:
        """Mirror the provider: endpoint into URL/credentials, state into health."""
        endpoint = provider.endpoint
        if endpoint is not None:
            self.url = check_url(endpoint.url)
            self.validate_cert = endpoint.validate_cert
            self.ca_certs = endpoint.ca_certs
        if provider.state is not State.READY:
            self.mark_unhealthy(f"{provider.state.value}: {provider.message}")
        else:
            self.checked_at = 0.0  # check the gateway itself at the next listing

    @property
    def across_network(self) -> bool:
        """Its URL is a local listener, but the provider's link behind it (SSH, a cluster's
        network) is the network that compression is for."""
        return True

    def token(self) -> str | None:
        endpoint = self.provider.endpoint
        return endpoint.token if endpoint else None

    async def check(self, *args, **kw) -> None:
        provider = self.provider
        if provider.state is State.STOPPED and not self._reattach_tried:
            # Stored runtime after a server restart: re-attach once, in the background.
            self._reattach_tried = True
            if provider.persisted().get("token") and hasattr(provider, "start_soon"):
                provider.start_soon()
        if provider.state is not State.READY:
            self.healthy, self.error = False, f"{provider.state.value}: {provider.message}"
            return
        await super().check(*args, **kw)

    def persisted(self) -> dict:
        return {"display_name": self.display_name, "provider": self.provider.persisted()}

    def public_model(self) -> dict:
        return {**super().public_model(), "provider": self.provider.public_model()}


def runtime_from_record(record: dict, parent=None) -> ProvidedRuntime:
    """Rebuild a stored provider runtime (the registry calls this for entries with 'provider')."""
    spec = dict(record.get("provider") or {})
    kind = spec.pop("kind", None)
    name = spec.pop("name", None)
    try:
        provider = provider_class(kind)(name, parent=parent, **spec)
    except (TypeError, ProviderError) as e:
        raise RuntimeError_(f"stored {kind} runtime {name!r}: {e}") from None
    rt = ProvidedRuntime(provider, display_name=record.get("display_name"), reattach=True)
    save = getattr(parent, "_save", None)  # the registry's store: a restarted gateway's token
    if save is not None:
        provider.on_change(lambda p: save() if p.state is State.READY else None)
    return rt


async def wait_state(provider: RuntimeProvider, timeout: float, states=(State.READY,)) -> State:
    """Wait until the provider is in one of `states` (or STOPPED); for handlers and tests."""
    targets = (*states, State.STOPPED)
    reached = asyncio.Event()

    def listener(p: RuntimeProvider) -> None:
        if p.state in targets:
            reached.set()

    listener(provider)
    provider.on_change(listener)
    try:
        await asyncio.wait_for(reached.wait(), timeout)
    except asyncio.TimeoutError:
        pass
    finally:
        provider.off_change(listener)
    return provider.state
