"""HTTP/1.1 keep-alive to one runtime: its connections are reused across requests.

tornado's SimpleAsyncHTTPClient sends `Connection: close`, so each request to a runtime paid a
TCP (and TLS) handshake: one extra link round trip per API call and per upload chunk. This
client speaks tornado's own HTTP1Connection over connections it keeps idle for a while, and
takes the same HTTPRequest and returns the same HTTPResponse, so callers did not change.

Websockets to the runtime (kernel channels, metrics) start on an idle kept-alive connection
when one is at hand: the Upgrade is the only round trip.

What it does not do: redirects (runtimes' APIs do not redirect; a 3xx is returned as is),
HTTP/2, pipelining (one request at a time per connection)."""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Awaitable, Callable
from io import BytesIO
from typing import Any, cast
from urllib.parse import urlsplit

from tornado import httputil, version
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.httpclient import HTTPRequest, HTTPResponse, _RequestProxy
from tornado.iostream import IOStream, StreamClosedError
from tornado.simple_httpclient import HTTPStreamClosedError, HTTPTimeoutError
from tornado.tcpclient import TCPClient
from tornado.websocket import WebSocketClientConnection

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_Key = tuple[str, str, int]


class _Collect(httputil.HTTPMessageDelegate):
    """One response: start line, headers, body (kept, or handed to streaming_callback)."""

    def __init__(self, request: HTTPRequest):
        self.request = request
        self.start: httputil.ResponseStartLine | None = None
        self.headers = httputil.HTTPHeaders()
        self.chunks: list[bytes] = []
        self.closed_early = False

    def headers_received(self, start_line, headers):
        assert isinstance(start_line, httputil.ResponseStartLine)
        if 100 <= start_line.code < 200:
            return None  # an interim answer: the real one follows
        self.start, self.headers = start_line, headers
        callback = self.request.header_callback
        if callback is not None:
            callback(f"{start_line.version} {start_line.code} {start_line.reason}\r\n")
            for k, v in headers.get_all():
                callback(f"{k}: {v}\r\n")
            callback("\r\n")
        return None

    async def data_received(self, chunk: bytes) -> None:
        if self.request.streaming_callback is not None:
            pending = self.request.streaming_callback(chunk)
            if pending is not None:
                await pending  # back-pressure, as tornado's client does
        else:
            self.chunks.append(chunk)

    def finish(self) -> None:
        pass

    def on_connection_close(self) -> None:
        self.closed_early = True


class KeepAliveHTTPClient:
    """`fetch(request)` like tornado's client (errors other than HTTP statuses raise), over
    connections kept alive for `idle_timeout` seconds. `max_clients` bounds requests in flight
    (each on its own connection); at most `max_idle` connections are kept."""

    def __init__(
        self,
        tcp_client: TCPClient,
        *,
        max_clients: int = 16,
        max_idle: int = 8,
        idle_timeout: float = 20.0,
        max_body_size: int | None = None,
    ):
        self.tcp_client = tcp_client
        self.max_idle, self.idle_timeout = max_idle, idle_timeout
        self.max_body_size = max_body_size
        self._slots = asyncio.Semaphore(max_clients)
        self._idle: dict[_Key, list[tuple[float, IOStream]]] = {}
        self._busy: set[IOStream] = set()
        self.opened = 0  # connections made (tests and benchmarks count them)
        self.closed = False

    # -- connections ------------------------------------------------------------------
    def _take_idle(self, key: _Key) -> IOStream | None:
        pool = self._idle.get(key) or []
        now = time.monotonic()
        for since, stream in pool:
            if stream.closed() or now - since >= self.idle_timeout:
                stream.close()
        pool[:] = [(t, s) for t, s in pool if not s.closed()]
        if not pool:
            return None
        stream = pool.pop()[1]  # the most recently used
        stream.set_close_callback(None)
        return stream

    def _put_idle(self, key: _Key, stream: IOStream) -> None:
        pool = self._idle.setdefault(key, [])
        if self.closed or stream.closed() or len(pool) >= self.max_idle:
            stream.close()
            return

        def forget() -> None:  # the runtime closed it while idle
            entries = self._idle.get(key) or []
            entries[:] = [(t, s) for t, s in entries if s is not stream]

        stream.set_close_callback(forget)
        pool.append((time.monotonic(), stream))

    async def _connect(self, key: _Key, request: HTTPRequest, timeout: float) -> IOStream:
        scheme, host, port = key
        ssl_options = _ssl_context(request) if scheme == "https" else None
        stream = await connect_or_close(
            self.tcp_client.connect(
                host,
                port,
                ssl_options=ssl_options,
                max_buffer_size=self.max_body_size,
                source_ip=None,
                timeout=timeout,
            )
        )
        stream.set_nodelay(True)
        self.opened += 1
        return stream

    # -- requests ---------------------------------------------------------------------
    async def fetch(
        self,
        request: HTTPRequest,
        raise_error: bool = False,
        *,
        on_stream: Callable[[IOStream], Any] | None = None,
        bounded: bool = True,
    ) -> HTTPResponse:
        """`on_stream(stream)` is told each connection the request uses (so a caller can cut
        it); `bounded=False`: not counted in `max_clients` (the caller bounds it). An idempotent
        request that fails on a reused connection before any answer came (the runtime had
        closed it while idle) is sent again once on a new connection."""
        if self.closed:
            raise RuntimeError("client closed")
        if not bounded:
            return await self._fetch(request, on_stream)
        async with self._slots:
            return await self._fetch(request, on_stream)

    async def _fetch(self, request: HTTPRequest, on_stream) -> HTTPResponse:
        parts = urlsplit(request.url)
        scheme = "https" if parts.scheme in ("https", "wss") else "http"
        key = _key(scheme, parts.hostname or "", parts.port)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        start = time.monotonic()
        total = float(request.request_timeout or 0) or None
        connect = float(request.connect_timeout or 0) or total or 20.0
        if total:
            connect = min(connect, total)
        for attempt in (0, 1):
            stream = self._take_idle(key) if attempt == 0 else None
            reused = stream is not None
            if stream is None:
                try:
                    stream = await self._connect(key, request, connect)
                except asyncio.TimeoutError:
                    raise HTTPTimeoutError("Timeout while connecting") from None
                except StreamClosedError as e:  # refused, reset: the socket's own error
                    raise _closed_error(e) from None
            if on_stream is not None:
                on_stream(stream)
            self._busy.add(stream)
            delegate = _Collect(request)
            try:
                left = None if total is None else max(0.0, total - (time.monotonic() - start))
                keep = await asyncio.wait_for(
                    self._exchange(stream, request, parts.netloc, path, delegate), left
                )
            except asyncio.TimeoutError:
                stream.close()
                raise HTTPTimeoutError("Timeout during request") from None
            except (StreamClosedError, ConnectionError) as e:
                stream.close()
                if reused and delegate.start is None and _may_resend(request):
                    continue  # the runtime had dropped the idle connection
                raise _closed_error(e) from None
            except BaseException:
                stream.close()
                raise
            finally:
                self._busy.discard(stream)
            if delegate.start is None or delegate.closed_early:  # closed before the end
                stream.close()
                if reused and delegate.start is None and _may_resend(request):
                    continue
                raise HTTPStreamClosedError("Connection closed")
            if keep:
                self._put_idle(key, stream)
            else:
                stream.close()
            return HTTPResponse(
                request,
                delegate.start.code,
                reason=delegate.start.reason,
                headers=delegate.headers,
                buffer=BytesIO(b"".join(delegate.chunks)),
                effective_url=request.url,
                request_time=time.monotonic() - start,
            )
        raise HTTPStreamClosedError("Stream closed")  # not reached

    async def _exchange(
        self, stream: IOStream, request: HTTPRequest, netloc: str, path: str, delegate
    ) -> bool:
        """Write the request, read the answer; True when the connection can be used again."""
        headers = httputil.HTTPHeaders(request.headers)
        headers.setdefault("Host", netloc.rpartition("@")[2])
        headers.setdefault("User-Agent", request.user_agent or f"Tornado/{version}")
        if request.decompress_response:
            headers["Accept-Encoding"] = "gzip"
        body = request.body if request.body_producer is None else None
        if body is not None:
            headers["Content-Length"] = str(len(body))
        conn = HTTP1Connection(
            stream,
            True,
            HTTP1ConnectionParameters(
                max_body_size=self.max_body_size,
                decompress=bool(request.decompress_response),
            ),
        )
        conn.write_headers(httputil.RequestStartLine(request.method, path, "HTTP/1.1"), headers)
        if body is not None:
            if body:
                await conn.write(body)
        elif request.body_producer is not None:
            # tornado types the producer's `write` as returning None; it returns a Future.
            pending = request.body_producer(conn.write)  # type: ignore[arg-type]
            if pending is not None:
                await pending
        conn.finish()
        open_after = await conn.read_response(delegate)
        if not open_after or delegate.closed_early or delegate.start is None:
            return False
        keep = _keeps_alive(delegate.start, delegate.headers)
        conn.detach()
        return keep and not stream.closed()

    def close(self) -> None:
        self.closed = True
        for pool in self._idle.values():
            for _since, stream in pool:
                stream.close()
        self._idle.clear()
        for stream in list(self._busy):
            stream.close()


def _key(scheme: str, host: str, port: int | None) -> _Key:
    return (scheme, host.lower(), port or (443 if scheme == "https" else 80))


class _IdleFirst:
    """A websocket's TCP client: an idle kept-alive connection of the pool when there is one
    (the Upgrade then costs no TCP/TLS handshake), else a new one through the pool's own
    TCP client (the peer check of a Unix socket included)."""

    def __init__(self, pool: KeepAliveHTTPClient):
        self.pool = pool

    async def connect(self, host, port, af=None, ssl_options=None, **kw) -> IOStream:
        stream = self.pool._take_idle(_key("https" if ssl_options else "http", host, port))
        if stream is not None:
            return stream
        kw = {k: v for k, v in kw.items() if k in ("max_buffer_size", "timeout")}
        stream = await connect_or_close(
            self.pool.tcp_client.connect(host, port, ssl_options=ssl_options, **kw)
        )
        self.pool.opened += 1
        return stream

    def close(self) -> None:
        """Called by the websocket when it closes: the pool's TCP client stays open."""


class _PooledWebSocket(WebSocketClientConnection):
    def __init__(self, request: HTTPRequest, pool: KeepAliveHTTPClient, **kw):
        super().__init__(request, **kw)
        # tornado's constructor only schedules the connection's run(), which connects through
        # `self.tcp_client` on the loop's next turn: replacing it here is in time.
        self.tcp_client = _IdleFirst(pool)  # type: ignore[assignment]


def websocket_connect(
    pool: KeepAliveHTTPClient, request: HTTPRequest, **kw
) -> Awaitable[WebSocketClientConnection]:
    """tornado's websocket_connect, over an idle connection of `pool` when it has one. The
    request gets tornado's defaults as tornado's own websocket_connect gives them (its
    `_RequestProxy`: tests/server/test_keepalive.py catches a change of it)."""
    request.headers = httputil.HTTPHeaders(request.headers)
    proxied = cast(HTTPRequest, _RequestProxy(request, HTTPRequest._DEFAULTS))
    return _PooledWebSocket(proxied, pool, **kw).connect_future


async def connect_or_close(connecting) -> IOStream:
    """Await a connect; a caller cancelled meanwhile gets CancelledError and the connection, if
    it comes, is closed. Cancelling the connect itself could lose a stream that tornado had
    already handed over (its future done, the task not yet resumed), and asyncio.wait_for on
    Python 3.11 swallows a cancellation that meets a finished connect: either way an abandoned
    request kept its connection to a runtime that never answers (tests/faults/test_isolation.py)."""
    task = asyncio.ensure_future(connecting)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_close_if_connected)
        raise


def _close_if_connected(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is None:
        task.result().close()


def _keeps_alive(start: httputil.ResponseStartLine, headers: httputil.HTTPHeaders) -> bool:
    connection = headers.get("Connection", "").lower()
    if start.version == "HTTP/1.1":
        return "close" not in connection
    return "keep-alive" in connection and (
        "Content-Length" in headers or headers.get("Transfer-Encoding", "").lower() == "chunked"
    )


def _may_resend(request: HTTPRequest) -> bool:
    # Only what can safely run twice, and only with its whole body at hand (a body producer
    # has been used up). A POST is not sent again: the runtime may have acted on it.
    return request.body_producer is None and request.method in _IDEMPOTENT


def _closed_error(e: BaseException) -> BaseException:
    if isinstance(e, StreamClosedError):
        return e.real_error or HTTPStreamClosedError("Stream closed")
    return e


def _ssl_context(request: HTTPRequest) -> ssl.SSLContext:
    return _ssl_context_for(request.ca_certs, request.validate_cert is not False)


@functools.lru_cache(maxsize=16)
def _ssl_context_for(ca_certs: str | None, validate: bool) -> ssl.SSLContext:
    """One context per (CA file, validation): the CA file is read once, not per connection."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_certs)
    if not validate:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.options |= getattr(ssl, "OP_NO_COMPRESSION", 0)
    return ctx
