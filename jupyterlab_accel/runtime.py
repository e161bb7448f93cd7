"""One runtime: a gateway URL with its credentials, its health, its kernelspecs and description.

The token is read only when a request is built and never appears in `public_model()`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

# No "--" inside a name, so `accel--{runtime}--{spec}` splits back unambiguously.
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


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
    if not isinstance(url, str):
        raise RuntimeError_("url must be a string")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RuntimeError_(f"url must be http(s)://host[:port][/base]: {url!r}")
    if parts.username or parts.password:
        raise RuntimeError_("url must not carry credentials: pass the token in 'token'")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


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


class Runtime:
    """A gateway this server can route kernels to."""

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
    ):
        self.name = check_name(name)
        self.url = check_url(url)
        if display_name is not None and not isinstance(display_name, str):
            raise RuntimeError_("display_name must be a string")
        if ca_certs is not None and not isinstance(ca_certs, str):
            raise RuntimeError_("ca_certs must be a path")
        self.display_name = display_name or name
        self._token, self._token_env, self._token_file = token, token_env, token_file
        self.validate_cert = bool(validate_cert)
        self.ca_certs = ca_certs or None
        if price_per_hour is not None:
            try:
                price_per_hour = float(price_per_hour)
            except (TypeError, ValueError):
                raise RuntimeError_("price_per_hour must be a number") from None
            if price_per_hour < 0:
                raise RuntimeError_("price_per_hour must be >= 0")
        self.price_per_hour = price_per_hour
        self.embedded, self.removable = embedded, removable
        # health, refreshed by check()
        self.healthy = False
        self.error: str | None = "not checked yet"
        self.info: dict | None = None
        self.specs: dict = {}
        self.default_spec: str | None = None
        self.checked_at = 0.0
        self._check: asyncio.Future | None = None

    # -- credentials ------------------------------------------------------------------
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

    async def fetch(
        self,
        client: AsyncHTTPClient,
        path: str,
        method: str = "GET",
        *,
        body=None,
        timeout: float = 30,
        **kw,
    ) -> HTTPResponse:
        """Fetch without raising on HTTP status (callers look at `.code`)."""
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            kw.setdefault("headers", {})["Content-Type"] = "application/json"
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        req = self.request(path, method, body=body, timeout=timeout, **kw)
        try:
            return await client.fetch(req, raise_error=False)
        except HTTPClientError as e:  # only for 599-style failures with raise_error=False
            raise ConnectionError(str(e)) from None

    # -- health -----------------------------------------------------------------------
    async def check(self, client: AsyncHTTPClient, timeout: float, max_age: float = 0) -> None:
        """Refresh health, specs and description; concurrent callers share one check."""
        if max_age and time.monotonic() - self.checked_at < max_age:
            return
        if self._check is None or self._check.done():
            self._check = asyncio.ensure_future(self._do_check(client, timeout))
        await asyncio.shield(self._check)

    async def _do_check(self, client: AsyncHTTPClient, timeout: float) -> None:
        specs, info = await asyncio.gather(
            self.fetch(client, "/api/kernelspecs", timeout=timeout),
            self.fetch(client, "/api/accel/runtime", timeout=timeout),
            return_exceptions=True,
        )
        self.checked_at = time.monotonic()
        if isinstance(specs, BaseException):
            self.healthy, self.error = False, f"unreachable: {_short(specs)}"
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
        try:
            body = json.loads(specs.body)
            self.specs = body.get("kernelspecs") or {}
            self.default_spec = body.get("default")
        except ValueError:
            self.healthy, self.error = False, "/api/kernelspecs did not answer JSON"
            return
        self.info = None
        if not isinstance(info, BaseException) and info.code == 200:
            try:
                self.info = json.loads(info.body)
            except ValueError:
                self.info = None
        self.healthy, self.error = True, None

    def mark_unhealthy(self, error: str) -> None:
        self.healthy, self.error, self.checked_at = False, error, time.monotonic()

    @property
    def supports_accel(self) -> bool:
        return self.info is not None

    def public_model(self) -> dict:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "url": self.url,
            "healthy": self.healthy,
            "error": self.error,
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
