"""RuntimeRegistry: configured runtimes, runtimes users add at run time, and the embedded one.

Health is checked on demand with short timeouts, all runtimes at once, so one dead or hung
runtime never delays the others and never makes a listing wait more than `health_timeout`."""

from __future__ import annotations

import asyncio
import sys
import time

from tornado.httpclient import AsyncHTTPClient
from traitlets import Dict, Float, Instance, Int, List, default
from traitlets.config import LoggingConfigurable

from .embedded import EmbeddedGateway
from .runtime import Runtime, RuntimeError_
from .state import AccelState

USER_FILE = "runtimes.json"
_CONFIG_KEYS = {
    "name",
    "display_name",
    "url",
    "token",
    "token_env",
    "token_file",
    "validate_cert",
    "ca_certs",
    "price_per_hour",
}


class RuntimeRegistry(LoggingConfigurable):
    """Every runtime this server can route kernels to, by name."""

    runtimes = List(
        Dict(),
        config=True,
        help="Configured runtimes: [{name, url, display_name?, token | token_env | token_file, "
        "validate_cert? (default True), ca_certs?, price_per_hour?}]. Names match "
        "[a-z0-9][a-z0-9-]* without '--'. Prefer token_env or token_file to a literal token.",
    )
    health_timeout = Float(
        1.5,
        config=True,
        help="Seconds a health check (kernelspecs + /api/accel/runtime) may take per runtime.",
    )
    health_max_age = Float(
        1.0, config=True, help="Seconds a health result is reused before a listing checks again."
    )
    max_clients = Int(64, config=True, help="Concurrent upstream HTTP requests.")

    embedded = Instance(EmbeddedGateway)

    @default("embedded")
    def _default_embedded(self):
        return EmbeddedGateway(parent=self)

    def __init__(self, **kw):
        super().__init__(**kw)
        self.state = AccelState(parent=self)
        self._runtimes: dict[str, Runtime] = {}
        self._http: AsyncHTTPClient | None = None
        for entry in self.runtimes:
            try:
                self._add(self._from_config(entry))
            except RuntimeError_ as e:
                self.log.error("jupyterlab_accel: ignoring configured runtime: %s", e)
        for entry in self.state.read_json(USER_FILE, []):
            try:
                self._add(self._from_config(entry, removable=True))
            except (RuntimeError_, TypeError) as e:
                self.log.error("jupyterlab_accel: ignoring stored runtime: %s", e)

    @property
    def http(self) -> AsyncHTTPClient:
        """One client for every upstream request (bodies streamed, so no size cap needed)."""
        if self._http is None:
            self._http = AsyncHTTPClient(
                force_instance=True, max_clients=self.max_clients, max_body_size=sys.maxsize
            )
        return self._http

    @staticmethod
    def _from_config(entry: dict, removable: bool = False) -> Runtime:
        if not isinstance(entry, dict):
            raise RuntimeError_("a runtime must be an object")
        unknown = set(entry) - _CONFIG_KEYS
        if unknown:
            raise RuntimeError_(f"unknown runtime keys: {sorted(unknown)}")
        if "name" not in entry or "url" not in entry:
            raise RuntimeError_("a runtime needs 'name' and 'url'")
        return Runtime(**entry, removable=removable)

    def _add(self, rt: Runtime) -> None:
        if rt.name in self._runtimes:
            raise RuntimeError_(f"runtime {rt.name!r} already exists")
        self._runtimes[rt.name] = rt

    # -- lookup -----------------------------------------------------------------------
    def get(self, name: str) -> Runtime | None:
        return self._runtimes.get(name)

    def all(self) -> list[Runtime]:
        return list(self._runtimes.values())

    # -- the embedded runtime -----------------------------------------------------------
    def start_embedded(self, root_dir: str) -> None:
        if not self.embedded.enabled or self.embedded.name in self._runtimes:
            return
        self._add(self.embedded.start(root_dir))

    def stop_embedded(self) -> None:
        self.embedded.stop()

    # -- user-added runtimes ------------------------------------------------------------
    def add_user_runtime(self, body: dict) -> Runtime:
        if not isinstance(body, dict):
            raise RuntimeError_("expected a JSON object {name, url, token, display_name?}")
        allowed = {"name", "url", "token", "display_name", "validate_cert", "price_per_hour"}
        unknown = set(body) - allowed
        if unknown:
            raise RuntimeError_(f"unknown keys: {sorted(unknown)}")
        if body.get("token") is not None and not isinstance(body["token"], str):
            raise RuntimeError_("token must be a string")
        rt = self._from_config(body, removable=True)
        self._add(rt)
        self._save()
        self.log.info("jupyterlab_accel: runtime %r added (%s)", rt.name, rt.url)
        return rt

    def remove_user_runtime(self, name: str) -> None:
        rt = self._runtimes.get(name)
        if rt is None:
            raise KeyError(name)
        if not rt.removable:
            raise RuntimeError_(f"runtime {name!r} comes from configuration and cannot be removed")
        del self._runtimes[name]
        self._save()
        self.log.info("jupyterlab_accel: runtime %r removed", name)

    def _save(self) -> None:
        self.state.write_json(USER_FILE, [r.persisted() for r in self.all() if r.removable])

    # -- health ---------------------------------------------------------------------
    async def check(self, rt: Runtime, max_age: float | None = None) -> Runtime:
        max_age = self.health_max_age if max_age is None else max_age
        await rt.check(self.http, self.health_timeout, max_age)
        # A just-spawned embedded gateway answers within a second or two: wait for it.
        while (
            rt.embedded
            and not rt.healthy
            and self.embedded.starting
            and time.monotonic() - self.embedded.started_at < 20
        ):
            await asyncio.sleep(0.2)
            await rt.check(self.http, self.health_timeout, 0)
        return rt

    async def check_all(self, max_age: float | None = None) -> list[Runtime]:
        rts = self.all()
        await asyncio.gather(*(self.check(rt, max_age) for rt in rts))
        return rts

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
