"""The runtime provider interface: what makes a runtime exist.

A provider starts, stops and re-attaches one runtime and reports its state with a message. When
ready it hands the registry an `Endpoint` (a URL reachable from this server, the gateway's token,
an optional CA), so the registry and kernel routing never ask which provider a runtime came from:
an SSH runtime is a forwarded port on 127.0.0.1, a SLURM runtime the node's address.

Stable interface (other providers build on it): add to it, do not change what is here."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from traitlets.config import LoggingConfigurable


class State(str, enum.Enum):
    """Life cycle of a provider's runtime."""

    STARTING = "starting"  # being created or re-attached (connecting, installing, queued, ...)
    READY = "ready"  # endpoint valid: kernels can start
    LOST = "lost"  # was ready, link or host gone; the provider may be retrying
    STOPPED = "stopped"  # stopped on purpose, or failed to start (see `reason`)


@dataclass(frozen=True)
class Endpoint:
    """Where the registry reaches a provider's gateway. Never shown to the browser."""

    url: str  # http(s)://host:port[/base], e.g. http://127.0.0.1:PORT for a forwarded port
    token: str | None = None
    ca_certs: str | None = None  # path of a CA bundle for https
    validate_cert: bool = True


@dataclass
class Status:
    """What the UI shows about a provider's runtime (no secrets)."""

    state: State = State.STOPPED
    message: str = ""
    step: str | None = None  # provider-specific progress step: "connecting", "installing", ...
    reason: str | None = None  # machine-readable failure cause: "auth_refused", "no_python", ...
    details: dict = field(default_factory=dict)  # e.g. {"job_id": ..., "queue_position": ...}
    since: float = field(default_factory=time.time)

    def model(self) -> dict:
        return {
            "state": self.state.value,
            "message": self.message,
            "step": self.step,
            "reason": self.reason,
            "details": dict(self.details),
            "since": self.since,
        }


class ProviderError(Exception):
    """A step failed: `step` and `reason` name it, the text says why (shown to the user)."""

    def __init__(
        self,
        message: str,
        *,
        step: str | None = None,
        reason: str | None = None,
        details: dict | None = None,
    ):
        super().__init__(message)
        self.step, self.reason = step, reason
        self.details = details or {}  # shown with the status, e.g. a host key's fingerprint


class RuntimeProvider(LoggingConfigurable):
    """One runtime's life cycle. Subclasses implement `start`, `stop` and may override
    `reattach`, `persisted`; they report progress through `set_status`."""

    kind: str = ""  # "url", "ssh", "slurm": the provider type, stored with the runtime

    def __init__(self, name: str, **kw):
        super().__init__(**kw)
        self.name = name
        self.status = Status()
        self.endpoint: Endpoint | None = None  # kept while LOST: it often comes back as is
        self.price_per_hour: float | None = None  # cost shown with the runtime, if known
        self._listeners: list[Callable[[RuntimeProvider], None]] = []

    # -- state --------------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self.status.state

    @property
    def message(self) -> str:
        return self.status.message

    def set_status(
        self,
        state: State,
        message: str = "",
        *,
        step: str | None = None,
        reason: str | None = None,
        details: dict | None = None,
    ) -> None:
        """Record a new state and tell listeners (the registry marks health from it)."""
        keep = self.status.details if details is None else details
        self.status = Status(state, message, step, reason, dict(keep))
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception:  # a listener's bug must not break the provider
                self.log.exception("jupyterlab_accel: provider listener failed")

    def on_change(self, listener: Callable[[RuntimeProvider], None]) -> None:
        self._listeners.append(listener)

    def off_change(self, listener: Callable[[RuntimeProvider], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> Endpoint:
        """Create the runtime; return its endpoint once ready. Raise ProviderError on failure
        (after setting STOPPED with step and reason)."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop the runtime on its host (its kernels die with it); state becomes STOPPED."""
        raise NotImplementedError

    async def reattach(self) -> Endpoint:
        """Reach a runtime that still runs (after a link drop or a server restart) without
        starting a new one where possible. Default: `start`."""
        return await self.start()

    # -- records --------------------------------------------------------------------------
    def persisted(self) -> dict:
        """What the 0600 state file keeps so a restarted server can re-attach (may hold the
        gateway token; never passphrases)."""
        return {"kind": self.kind, "name": self.name}

    def public_model(self) -> dict:
        """Provider fields of /accel/runtimes entries: {kind, state, message, step, ...}."""
        return {"kind": self.kind, **self.status.model()}
