"""One runtime: a gateway URL with its credentials, its health, its kernelspecs and description.

The token is read only when a request is built and never appears in `public_model()`."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import os
import re
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from tornado.httpclient import HTTPClientError, HTTPRequest, HTTPResponse
from tornado.netutil import Resolver
from tornado.tcpclient import TCPClient
from tornado.websocket import WebSocketClientConnection

from .keepalive import KeepAliveHTTPClient
from .keepalive import websocket_connect as pooled_websocket_connect

if TYPE_CHECKING:
    from .uploads import WriteBehindUpload

# No "--" inside a name, so `accel--{runtime}--{spec}` splits back unambiguously.
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_HOST_RE = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_PRINTABLE_RE = re.compile(r"^[\x21-\x7e]*$")  # visible ASCII: no spaces, CR/LF or controls
MAX_PRICE_PER_HOUR = 1e6
MAX_URL_LENGTH = 2048


class RuntimeError_(ValueError):
    """Bad runtime definition (reported to the user as a 400)."""


def check_name(name) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > 63:
        raise RuntimeError_(
            f"invalid runtime name {name!r}: lowercase letters, digits and single hyphens "
            "([a-z0-9][a-z0-9-]*, no '--'), at most 63 characters"
        )
    return name


def check_url(url) -> str:
    """http(s)://host[:port][/base], parsed strictly; returns it normalised (no trailing /)."""
    if not isinstance(url, str):
        raise RuntimeError_("url must be a string")
    if len(url) > MAX_URL_LENGTH or not _PRINTABLE_RE.match(url):
        raise RuntimeError_(
            f"url must be at most {MAX_URL_LENGTH} visible ASCII characters "
            f"(no spaces, CR/LF or control characters): {url[:100]!r}"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise RuntimeError_(f"url is not valid ({e}): {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RuntimeError_(f"url must be http(s)://host[:port][/base]: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise RuntimeError_("url must not carry credentials: pass the token in 'token'")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise RuntimeError_(f"url must not have a query or fragment: {url!r}")
    if port == 0 or (parts.netloc.endswith(":") and port is None):
        raise RuntimeError_(f"url port must be 1-65535: {url!r}")
    host = parts.hostname
    if ":" in host:  # IPv6 literal (urlsplit checked the brackets)
        try:
            ipaddress.IPv6Address(host.split("%")[0])
        except ValueError:
            raise RuntimeError_(f"url host is not a valid IPv6 address: {host!r}") from None
    elif not _HOST_RE.match(host):
        raise RuntimeError_(f"url host is not a valid host name or address: {host!r}")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def check_price(value) -> float | None:
    """None, or a finite number of currency units per hour in [0, MAX_PRICE_PER_HOUR]."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise RuntimeError_("price_per_hour must be a number")
    try:
        price = float(value)
    except (TypeError, ValueError, OverflowError):
        raise RuntimeError_("price_per_hour must be a number") from None
    if not math.isfinite(price) or not 0 <= price <= MAX_PRICE_PER_HOUR:
        raise RuntimeError_(
            f"price_per_hour must be a finite number from 0 to {MAX_PRICE_PER_HOUR:g}"
        )
    return price


def check_token(token) -> str | None:
    """A token goes into an HTTP header: visible ASCII only (a CR/LF would inject headers)."""
    if token is None or token == "":
        return None
    if not isinstance(token, str):
        raise RuntimeError_("token must be a string")
    if len(token) > 4096 or not _PRINTABLE_RE.match(token):
        raise RuntimeError_(
            "token must be at most 4096 visible ASCII characters (no spaces or CR/LF)"
        )
    return token


def check_display_name(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 200 or any(ord(c) < 32 for c in value):
        raise RuntimeError_("display_name must be a string of at most 200 printable characters")
    return value


# -- answers of runtimes, validated before anyone uses them -------------------------------
class BadAnswer(ConnectionError):
    """A runtime answered with the wrong shape: treated like an unreachable runtime."""


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise ValueError(what)


def _opt(value, types, what: str) -> None:
    _need(value is None or (isinstance(value, types) and not isinstance(value, bool)), what)


def check_kernelspecs(body) -> None:
    _need(isinstance(body, dict), "expected an object {default, kernelspecs}")
    specs = body.get("kernelspecs")
    _need(isinstance(specs, dict), "'kernelspecs' must be an object")
    _opt(body.get("default"), str, "'default' must be a string")
    for name, entry in specs.items():
        _need(isinstance(entry, dict), f"kernelspec {name!r} must be an object")
        check_kernelspec(entry, name)


def check_kernelspec(entry, name="") -> None:
    _need(isinstance(entry, dict), "expected a kernelspec object")
    spec = entry.get("spec")
    _need(isinstance(spec, dict), f"kernelspec {name!r}: 'spec' must be an object")
    _need(
        isinstance(spec.get("display_name"), str),
        f"kernelspec {name!r}: 'display_name' must be a string",
    )
    _opt(spec.get("language"), str, f"kernelspec {name!r}: 'language' must be a string")
    _opt(spec.get("metadata"), dict, f"kernelspec {name!r}: 'metadata' must be an object")
    _opt(entry.get("resources"), dict, f"kernelspec {name!r}: 'resources' must be an object")


def check_runtime_info(body) -> None:
    _need(isinstance(body, dict), "expected an object")
    _opt(body.get("accelerator"), str, "'accelerator' must be a string")
    _opt(body.get("shape"), str, "'shape' must be a string")
    _opt(body.get("version"), str, "'version' must be a string")
    for key in ("cpu_count", "memory_total", "disk_total", "disk_free"):
        _opt(body.get(key), (int, float), f"{key!r} must be a number")
    _opt(body.get("limits"), dict, "'limits' must be an object")
    _opt(body.get("features"), list, "'features' must be a list")
    devices = body.get("devices")
    _opt(devices, list, "'devices' must be a list")
    for dev in devices or []:
        _need(isinstance(dev, dict), "each device must be an object")
        _opt(dev.get("name"), str, "a device 'name' must be a string")
        _opt(dev.get("memory_total"), (int, float), "a device 'memory_total' must be a number")


def check_kernel_model(body) -> None:
    _need(isinstance(body, dict), "expected a kernel object {id, name, ...}")
    _need(isinstance(body.get("id"), str) and body["id"], "kernel 'id' must be a string")
    _need(isinstance(body.get("name"), str), "kernel 'name' must be a string")
    for key in ("execution_state", "last_activity", "started", "expires_at", "reason"):
        _opt(body.get(key), str, f"kernel {key!r} must be a string")
    _opt(body.get("connections"), int, "kernel 'connections' must be an integer")


def check_kernel_list(body) -> None:
    _need(isinstance(body, list), "expected a list of kernels")
    for k in body:
        check_kernel_model(k)


# (method, path pattern, validator) for answers 200/201 of the standard and /api/accel APIs.
_ANSWER_CHECKS: list[tuple[str, re.Pattern[str], Callable[[Any], None]]] = [
    ("GET", re.compile(r"^/api/kernelspecs$"), check_kernelspecs),
    ("GET", re.compile(r"^/api/kernelspecs/[^/]+$"), check_kernelspec),
    ("GET", re.compile(r"^/api/accel/runtime$"), check_runtime_info),
    ("GET", re.compile(r"^/api/(accel/)?kernels$"), check_kernel_list),
    ("POST", re.compile(r"^/api/kernels$"), check_kernel_model),
    ("GET", re.compile(r"^/api/kernels/[^/]+$"), check_kernel_model),
    ("POST", re.compile(r"^/api/kernels/[^/]+/restart$"), check_kernel_model),
]


def check_answer(method: str, path: str, resp: HTTPResponse):
    """The parsed JSON body when `path` is one we know the shape of; raises ValueError."""
    bare = path.split("?", 1)[0]
    for m, pattern, check in _ANSWER_CHECKS:
        if m == method and pattern.match(bare):
            try:
                body = json.loads(resp.body or b"")
            except ValueError:
                raise ValueError("not JSON") from None
            check(body)
            return body
    return None


def accelerator_label(info: dict | None) -> str | None:
    """'GPU H100', 'GPU 2×A100', 'TPU v4', 'CPU' from a gateway's /api/accel/runtime."""
    if not info:
        return None
    kind = (info.get("accelerator") or "none").lower()
    if kind == "none":
        return "CPU"
    devices = info.get("devices") or []
    label = kind.upper()
    if devices:
        name = str(devices[0].get("name") or "")
        for prefix in ("NVIDIA ", "Tesla ", "Google "):
            name = name.replace(prefix, "")
        short = name.split()[0] if name.split() else ""
        if short:
            label += f" {len(devices)}×{short}" if len(devices) > 1 else f" {short}"
    return label


class UnixSocketResolver(Resolver):
    """Every host name resolves to one Unix domain socket (a gateway in a private folder)."""

    def initialize(self, path: str) -> None:
        self.path = path

    async def resolve(self, host, port, family=socket.AF_UNSPEC):
        return [(socket.AF_UNIX, self.path)]


class _RuntimeTCPClient(TCPClient):
    """Opens a runtime's connections. For a gateway this server started, checks that the peer
    of a Unix socket is that very process (SO_PEERCRED) before anything, the token included,
    is written."""

    def __init__(self, resolver=None, peer_pid: int | None = None):
        super().__init__(resolver)
        self.peer_pid = peer_pid

    async def connect(self, *args, **kw):
        stream = await super().connect(*args, **kw)
        if self.peer_pid is not None:
            raw = stream.socket.getsockopt(
                socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
            )
            pid = struct.unpack("3i", raw)[0]
            if pid != self.peer_pid:
                stream.close()
                raise ConnectionError(
                    f"the socket is served by pid {pid}, not by the gateway this server "
                    f"started (pid {self.peer_pid}): refusing to send it a token"
                )
        return stream


class StreamSlot:
    """One streamed request (a proxied upload or download) on one of the runtime's kept-alive
    connections, outside the API calls' `max_connections` but within `max_streams`.

    `abort()` closes that connection (used when the browser goes away), so a runtime that
    never answers keeps no slot of this runtime's `max_streams` once nobody waits for it."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self.streams: list = []

    async def fetch(self, request: HTTPRequest) -> HTTPResponse:
        try:
            return await self.rt.http.fetch(
                request, raise_error=False, on_stream=self.streams.append, bounded=False
            )
        except asyncio.CancelledError:
            self.abort()
            raise

    def abort(self) -> None:
        for stream in self.streams:
            stream.close()

    def close(self) -> None:
        self.rt._streams.release()


class Runtime:
    """A gateway this server can route kernels to.

    Each runtime has its own HTTP clients (a short-call pool for API requests and health, and
    a bounded number of stream slots for proxied transfers), so a hung or slow runtime uses up
    only its own connections, never another runtime's."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        display_name: str | None = None,
        token: str | None = None,
        token_env: str | None = None,
        token_file: str | None = None,
        validate_cert: bool = True,
        ca_certs: str | None = None,
        price_per_hour: float | None = None,
        embedded: bool = False,
        removable: bool = False,
        unix_socket: str | None = None,
        max_connections: int = 16,
        max_streams: int = 16,
    ):
        self.name = check_name(name)
        self.url = check_url(url)
        self.display_name = check_display_name(display_name) or name
        if ca_certs is not None and not isinstance(ca_certs, str):
            raise RuntimeError_("ca_certs must be a path")
        for key, value in (("token_env", token_env), ("token_file", token_file)):
            if value is not None and not isinstance(value, str):
                raise RuntimeError_(f"{key} must be a string")
        self._token, self._token_env, self._token_file = check_token(token), token_env, token_file
        self.validate_cert = bool(validate_cert)
        self.ca_certs = ca_certs or None
        self.price_per_hour = check_price(price_per_hour)
        self.embedded, self.removable = embedded, removable
        self.max_connections, self.max_streams = max_connections, max_streams
        self.unix_socket = unix_socket
        self.websocket_compression = "auto"  # RuntimeRegistry.websocket_compression
        self.http_compression = "auto"  # RuntimeRegistry.http_compression
        self.peer_pid: int | None = None
        self.resolver: Resolver | None = None
        self._http: KeepAliveHTTPClient | None = None
        self._streams = asyncio.Semaphore(max_streams)
        self.uploads: dict[str, WriteBehindUpload] = {}  # by contents path (handlers/proxy.py)
        self.set_unix_socket(unix_socket)
        # health, refreshed by check()
        self.healthy = False
        self.error: str | None = "not checked yet"
        self.notice: str | None = None  # a user-facing event, e.g. "restarted after it died"
        self.info: dict | None = None
        self.specs: dict = {}
        self.default_spec: str | None = None
        self.checked_at = 0.0
        self.ok_at = 0.0  # when a check last succeeded
        self.bad_answer: tuple[float, str] | None = None  # (until, reason) after garbage
        self._check: asyncio.Future | None = None

    def set_unix_socket(self, path: str | None, peer_pid: int | None = None) -> None:
        """Reach the gateway through a Unix domain socket (the URL's host is then ignored);
        `peer_pid`: only a socket served by that process is talked to."""
        self.close()
        self.unix_socket, self.peer_pid = path, peer_pid
        self.resolver = UnixSocketResolver(path=path) if path else None

    # -- credentials ------------------------------------------------------------------
    def set_token(self, token: str | None) -> None:
        self._token = check_token(token)

    @property
    def token_env(self) -> str | None:
        """The environment variable the token is read from, if any (a secret's name)."""
        return self._token_env

    def token(self) -> str | None:
        if self._token:
            return self._token
        if self._token_env:
            return os.environ.get(self._token_env) or None
        if self._token_file:
            try:
                return Path(self._token_file).expanduser().read_text().strip() or None
            except OSError:
                return None
        return None

    def headers(self) -> dict:
        token = self.token()
        return {"Authorization": f"token {token}"} if token else {}

    def persisted(self) -> dict:
        """What the state file keeps for a user-added runtime (token included: file is 0600)."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "url": self.url,
            "token": self._token,
            "validate_cert": self.validate_cert,
            "ca_certs": self.ca_certs,
            "price_per_hour": self.price_per_hour,
        }

    # -- requests ---------------------------------------------------------------------
    @property
    def http(self) -> KeepAliveHTTPClient:
        """This runtime's client: API calls (at most `max_connections` at once) and stream
        slots, on connections kept alive between requests."""
        if self._http is None:
            self._http = KeepAliveHTTPClient(
                _RuntimeTCPClient(self.resolver, self.peer_pid),
                max_clients=self.max_connections,
                max_body_size=sys.maxsize,
            )
        return self._http

    def http_client(self) -> KeepAliveHTTPClient:
        """`http`, for callers that ask for a runtime's client by this name (filesync)."""
        return self.http

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[4:]

    def request(
        self,
        path: str,
        method: str = "GET",
        *,
        timeout: float = 30,
        connect_timeout: float | None = None,
        ws: bool = False,
        **kw,
    ) -> HTTPRequest:
        headers = dict(kw.pop("headers", None) or {})
        headers.update(self.headers())
        base = self.ws_url if ws else self.url
        if not ws:  # gzip where it pays; the client decodes unless the caller passes it on
            kw.setdefault("decompress_response", self.compresses_http)
        return HTTPRequest(
            base + path,
            method=method,
            headers=headers,
            validate_cert=self.validate_cert,
            ca_certs=self.ca_certs,
            request_timeout=timeout,
            connect_timeout=connect_timeout or min(timeout, 5.0),
            **kw,
        )

    async def api(
        self, path: str, method: str = "GET", *, body=None, timeout: float = 30, **kw
    ) -> HTTPResponse:
        """One API call on this runtime's own client, without raising on HTTP status
        (callers look at `.code`). Answers of known shape (kernelspecs, kernel models, runtime
        info) are validated first: a wrong shape marks the runtime unhealthy and raises
        BadAnswer (a ConnectionError), so callers only ever see well-formed bodies."""
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            kw.setdefault("headers", {})["Content-Type"] = "application/json"
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        req = self.request(path, method, body=body, timeout=timeout, **kw)
        try:
            resp = await self.http.fetch(req, raise_error=False)
        except HTTPClientError as e:  # only for 599-style failures with raise_error=False
            raise ConnectionError(str(e)) from None
        if resp.code in (200, 201):
            try:
                check_answer(method, path, resp)
            except ValueError as e:
                reason = f"bad answer from {method} {path.split('?')[0]}: {e}"
                self.mark_bad_answer(reason)
                raise BadAnswer(f"runtime {self.name!r} gave a {reason}") from None
        return resp

    async def fetch(self, client, path: str, method: str = "GET", **kw) -> HTTPResponse:
        """`api()` for callers written before per-runtime clients: `client` is ignored."""
        return await self.api(path, method, **kw)

    async def open_stream(self, timeout: float) -> StreamSlot:
        """A slot for one streamed transfer; ConnectionError when all `max_streams` stay
        busy for `timeout` seconds."""
        try:
            await asyncio.wait_for(self._streams.acquire(), timeout)
        except asyncio.TimeoutError:
            raise ConnectionError(
                f"all {self.max_streams} transfer slots of runtime {self.name!r} are busy"
            ) from None
        return StreamSlot(self)

    @property
    def across_network(self) -> bool:
        """Not on loopback, not through a Unix socket: where compression can pay."""
        if self.unix_socket:
            return False
        host = urlsplit(self.url).hostname or ""
        try:
            return not ipaddress.ip_address(host).is_loopback
        except ValueError:
            return host != "localhost"

    @property
    def compresses_websockets(self) -> bool:
        """Offer permessage-deflate: "on", or "auto" for a runtime across a network. The
        gateway decides whether to accept."""
        return self._compresses(self.websocket_compression)

    @property
    def compresses_http(self) -> bool:
        """Ask for gzip-encoded answers: "on", or "auto" for a runtime across a network."""
        return self._compresses(self.http_compression)

    def _compresses(self, setting: str) -> bool:
        return self.across_network if setting == "auto" else setting == "on"

    async def websocket_connect(self, request: HTTPRequest, **kw) -> WebSocketClientConnection:
        """tornado's websocket_connect through this runtime's resolver (Unix socket or TCP),
        on an idle kept-alive connection when there is one."""
        if self.compresses_websockets:
            kw.setdefault("compression_options", {})
        return await pooled_websocket_connect(self.http, request, resolver=self.resolver, **kw)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    # -- health -----------------------------------------------------------------------
    async def check(
        self, client=None, timeout: float = 1.5, max_age: float = 0, grace: float = 0
    ) -> None:
        """Refresh health, specs and description; concurrent callers share one check.
        `grace`: a check that only timed out keeps a runtime that was healthy less than
        `grace` seconds ago healthy, with its last kernelspecs (stale while failing)."""
        if max_age and time.monotonic() - self.checked_at < max_age:
            return
        if self._check is None or self._check.done():
            self._check = asyncio.ensure_future(self._do_check(timeout, grace))
        await asyncio.shield(self._check)

    async def _do_check(self, timeout: float, grace: float = 0) -> None:
        specs, info = await asyncio.gather(
            self.api("/api/kernelspecs", timeout=timeout),
            self.api("/api/accel/runtime", timeout=timeout),
            return_exceptions=True,
        )
        self.checked_at = now = time.monotonic()
        if self.bad_answer and now < self.bad_answer[0]:
            self.healthy, self.error = False, self.bad_answer[1]
            return
        self.bad_answer = None
        if isinstance(specs, BadAnswer) or isinstance(info, BadAnswer):
            return  # api() marked it unhealthy with the reason
        if isinstance(specs, BaseException):
            error = f"unreachable: {_short(specs)}"
            if _short(specs) == "timed out" and self.healthy and now - self.ok_at < grace:
                return  # one slow check: keep the last good state a little longer
            self.healthy, self.error = False, error
            return
        if specs.code in (401, 403):
            self.healthy, self.error = (
                False,
                f"authentication failed ({specs.code}): check the token",
            )
            return
        if specs.code != 200:
            self.healthy, self.error = (
                False,
                f"unexpected answer {specs.code} from /api/kernelspecs",
            )
            return
        body = json.loads(specs.body)  # validated by api()
        self.specs = body["kernelspecs"]
        self.default_spec = body.get("default")
        self.info = None
        if not isinstance(info, BaseException) and info.code == 200:
            self.info = json.loads(info.body)
        self.healthy, self.error, self.ok_at = True, None, now

    def mark_unhealthy(self, error: str) -> None:
        self.healthy, self.error, self.checked_at = False, error, time.monotonic()

    # A runtime that answered garbage stays unhealthy this long (health checks alone would
    # not notice a bad kernel model).
    bad_answer_hold = 30.0

    def mark_bad_answer(self, reason: str) -> None:
        self.bad_answer = (time.monotonic() + self.bad_answer_hold, reason)
        self.mark_unhealthy(reason)

    @property
    def supports_accel(self) -> bool:
        return self.info is not None

    def public_model(self) -> dict:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "url": "unix socket (private)" if self.unix_socket else self.url,
            "healthy": self.healthy,
            "error": self.error,
            "notice": self.notice,
            "embedded": self.embedded,
            "removable": self.removable,
            "price_per_hour": self.price_per_hour,
            "accelerator": accelerator_label(self.info),
            "info": self.info,
        }


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "Timeout" in type(exc).__name__ or "timeout" in text.lower():
        return "timed out"
    return text[:200]
