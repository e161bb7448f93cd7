"""RuntimeRegistry: configured runtimes, runtimes users add at run time, and the embedded one.

Health is checked on demand with short timeouts, all runtimes at once, so one dead or hung
runtime never delays the others and never makes a listing wait more than `health_timeout`."""

from __future__ import annotations

import asyncio
import fnmatch
import sys
import time
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient
from traitlets import Bool, Dict, Enum, Float, Instance, Int, List, Unicode, default
from traitlets.config import LoggingConfigurable

from .embedded import EmbeddedGateway
from .runtime import Runtime, RuntimeError_
from .state import AccelState, StateFolderLocked

USER_FILE = "runtimes.json"


class RuntimeNotAllowed(RuntimeError_):
    """The server's configuration forbids this runtime (reported as a 403)."""


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
    health_grace = Float(
        4.0,
        config=True,
        help="Seconds a runtime that was healthy stays listed (with its last kernelspecs) while "
        "its health checks only time out: one slow check does not hide its kernels.",
    )
    max_connections = Int(
        16,
        config=True,
        help="Concurrent API requests per runtime (each runtime has its own HTTP client, so a "
        "hung runtime never uses another's connections).",
    )
    max_streams = Int(
        16,
        config=True,
        help="Concurrent proxied transfers (contents, files) per runtime; more wait up to "
        "`stream_wait` seconds for a slot, then get 503.",
    )
    stream_wait = Float(5.0, config=True, help="Seconds a proxied transfer waits for a slot.")
    stream_timeout = Float(
        3600,
        config=True,
        help="Seconds one proxied transfer may take in all (a big download on a slow link); a "
        "transfer whose browser goes away is cut at once, whatever this is.",
    )
    allow_user_runtimes = Bool(
        True,
        config=True,
        help="Whether users may add runtimes (POST /accel/runtimes). Turn off on multi-user "
        "deployments (JupyterHub) where only the operator chooses where kernels run.",
    )
    allowed_urls = List(
        Unicode(),
        config=True,
        help="Shell-style patterns (fnmatch) a user-added runtime URL must match, e.g. "
        "'https://*.gpu.example.org:443/*'. Matched against scheme://host:port/path with the "
        "port always written out. Empty: any URL. Configured runtimes are not restricted.",
    )
    max_clients = Int(
        64, config=True, help="Connections of the shared client (no runtime requests use it)."
    )
    websocket_compression = Enum(
        ["off", "on", "auto"],
        "auto",
        config=True,
        help="permessage-deflate on websockets to runtimes (kernels, metrics): 'auto' offers it "
        "to runtimes across a network, not on loopback or a Unix socket (measured: output 2-2.7x "
        "the link's bandwidth at 50 Mbit/s, about 3 ms of gateway CPU per MB; "
        "docs/benchmarks.md). The gateway accepts or not.",
    )
    http_compression = Enum(
        ["off", "on", "auto"],
        "auto",
        config=True,
        help="Ask runtimes for gzip-encoded REST answers (Files listings and downloads, file "
        "sync manifests), passed to the browser still compressed: 'auto' as for websockets, only "
        "for runtimes across a network. The gateway compresses JSON and text at level 1.",
    )

    embedded = Instance(EmbeddedGateway)

    @default("embedded")
    def _default_embedded(self):
        return EmbeddedGateway(parent=self)

    def __init__(self, **kw):
        super().__init__(**kw)
        self.state = AccelState(parent=self)
        self._runtimes: dict[str, Runtime] = {}
        self._http: AsyncHTTPClient | None = None
        try:
            self.state.lock()  # a second server on this folder stops here, naming the first
        except StateFolderLocked as e:
            self.log.critical("jupyterlab_accel: %s", e)
            raise SystemExit(1) from None
        for entry in self.runtimes:
            try:
                self._add(self._from_config(entry))
            except RuntimeError_ as e:
                self.log.error("jupyterlab_accel: ignoring configured runtime: %s", e)
        for entry in self.state.read_json(USER_FILE, []):
            try:
                if isinstance(entry, dict) and "provider" in entry:  # e.g. an SSH host's
                    from .providers.runtime import runtime_from_record

                    self._add(runtime_from_record(entry, parent=self))
                else:
                    self._add(self._from_config(entry, removable=True))
            except (RuntimeError_, TypeError) as e:
                self.log.error("jupyterlab_accel: ignoring stored runtime: %s", e)
        # Cluster runtimes and their jobs' runtimes (providers/slurm_runtime.py).
        from .providers.slurm_runtime import SlurmRuntimes

        self.slurm = SlurmRuntimes(self)
        self.slurm.install()

    @property
    def http(self) -> AsyncHTTPClient:
        """A shared client, kept for older callers: runtime requests go through each
        runtime's own client (`Runtime.api`, `Runtime.open_stream`)."""
        if self._http is None:
            self._http = AsyncHTTPClient(
                force_instance=True, max_clients=self.max_clients, max_body_size=sys.maxsize
            )
        return self._http

    def _from_config(self, entry: dict, removable: bool = False) -> Runtime:
        if not isinstance(entry, dict):
            raise RuntimeError_("a runtime must be an object")
        unknown = set(entry) - _CONFIG_KEYS
        if unknown:
            raise RuntimeError_(f"unknown runtime keys: {sorted(unknown)}")
        if "name" not in entry or "url" not in entry:
            raise RuntimeError_("a runtime needs 'name' and 'url'")
        return Runtime(
            **entry,
            removable=removable,
            max_connections=self.max_connections,
            max_streams=self.max_streams,
        )

    def _add(self, rt: Runtime) -> None:
        if rt.name in self._runtimes:
            raise RuntimeError_(f"runtime {rt.name!r} already exists")
        rt.websocket_compression = self.websocket_compression
        rt.http_compression = self.http_compression
        self._runtimes[rt.name] = rt

    def url_allowed(self, url: str) -> bool:
        """Whether a (normalised) user-added URL matches `allowed_urls` (empty: any)."""
        if not self.allowed_urls:
            return True
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        full = f"{parts.scheme}://{host}:{port}{parts.path or '/'}"
        return any(fnmatch.fnmatchcase(full, pattern) for pattern in self.allowed_urls)

    # -- lookup -----------------------------------------------------------------------
    def get(self, name: str) -> Runtime | None:
        return self._runtimes.get(name)

    def all(self) -> list[Runtime]:
        return list(self._runtimes.values())

    def remove(self, name: str) -> None:
        """Drop a runtime a provider made and owns (not in the state file)."""
        rt = self._runtimes.pop(name, None)
        if rt is not None:
            rt.close()

    async def kernel_target(self, kernel_name: str) -> str:
        """The kernel name a start of `kernel_name` goes to: itself, or for a cluster runtime
        the same spec on the runtime of a job submitted for it (waits while it is pending)."""
        return await self.slurm.kernel_target(kernel_name)

    # -- the embedded runtime -----------------------------------------------------------
    def start_embedded(self, root_dir: str) -> None:
        if not self.embedded.enabled or self.embedded.name in self._runtimes:
            return
        # Kernels there must not inherit the other runtimes' secrets.
        secrets = {rt.token_env for rt in self.all() if rt.token_env}
        secrets |= {
            e["token_env"]
            for e in self.runtimes
            if isinstance(e, dict) and isinstance(e.get("token_env"), str)
        }
        self._add(self.embedded.start(root_dir, exclude_env=secrets))

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
        if not self.url_allowed(rt.url):
            raise RuntimeNotAllowed(
                f"runtime URL {rt.url!r} is not allowed by this server's configuration "
                "(RuntimeRegistry.allowed_urls)"
            )
        self._add(rt)
        try:
            self._save()
        except BaseException:
            del self._runtimes[rt.name]  # nothing half-done: not saved, so not added
            raise
        self.log.info("jupyterlab_accel: runtime %r added (%s)", rt.name, rt.url)
        return rt

    def remove_user_runtime(self, name: str) -> None:
        rt = self._runtimes.get(name)
        if rt is None:
            raise KeyError(name)
        if not rt.removable:
            raise RuntimeError_(f"runtime {name!r} comes from configuration and cannot be removed")
        del self._runtimes[name]
        try:
            self._save()
        except BaseException:
            self._runtimes[name] = rt  # still on disk: keep it listed
            raise
        rt.close()
        self.log.info("jupyterlab_accel: runtime %r removed", name)

    def _save(self) -> None:
        self.state.write_json(USER_FILE, [r.persisted() for r in self.all() if r.removable])

    # -- health ---------------------------------------------------------------------
    async def check(self, rt: Runtime, max_age: float | None = None) -> Runtime:
        max_age = self.health_max_age if max_age is None else max_age
        await rt.check(None, self.health_timeout, max_age, self.health_grace)
        # A just-spawned embedded gateway answers within a second or two: wait for it.
        while (
            rt.embedded
            and not rt.healthy
            and self.embedded.starting
            and time.monotonic() - self.embedded.started_at < 20
        ):
            await asyncio.sleep(0.2)
            await rt.check(None, self.health_timeout, 0)
        return rt

    async def check_all(self, max_age: float | None = None) -> list[Runtime]:
        rts = self.all()
        await asyncio.gather(*(self.check(rt, max_age) for rt in rts))
        return rts

    def close(self) -> None:
        for rt in self.all():
            rt.close()
        if self._http is not None:
            self._http.close()
            self._http = None
