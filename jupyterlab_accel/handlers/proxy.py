"""Per-runtime proxies: contents and files (streamed both ways), mounts, metrics snapshot.

Bodies are streamed in both directions with back-pressure: an upload is forwarded chunk by
chunk as it arrives (a bounded queue), a download is written to the client as it arrives from
the runtime (each chunk flushed before the next is read). A multi-GB file never sits in memory."""

from __future__ import annotations

import asyncio
from urllib.parse import unquote

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import httputil, web

from .base import AccelHandler

_PASS_DOWN = (
    "Content-Type",
    "Content-Disposition",
    "Content-Length",
    "Last-Modified",
    "Etag",
    "Cache-Control",
    "Location",
)
_PASS_UP = ("Content-Type", "Content-Length")
# Contents bodies are JSON; JupyterLab uploads big files as 1 MiB chunks, so 256 MiB is ample.
MAX_CONTENTS_BODY = 256 << 20


@web.stream_request_body
class FilesProxyHandler(AccelHandler):
    """/accel/runtimes/{name}/contents/{path} -> /api/contents/{path};
    /accel/runtimes/{name}/files/{path} -> /files/{path} (raw bytes)."""

    SUPPORTED_METHODS = ("GET", "HEAD", "PUT", "POST", "PATCH", "DELETE")
    max_body_size = MAX_CONTENTS_BODY
    _queue: asyncio.Queue | None = None
    _upstream: asyncio.Future | None = None

    async def prepare(self):
        await ensure_async(super().prepare())
        # Bodies stream before the method runs, so authenticate and authorize here, first.
        if self.current_user is None:
            raise web.HTTPError(403)
        action = "read" if self.request.method in ("GET", "HEAD") else "write"
        if not await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, action, self.auth_resource)
        ):
            raise web.HTTPError(403)
        name = self.path_kwargs["name"]
        self.rt = await self.runtime(name)
        self.upstream_path = self._upstream_path(name)
        if self.request.method in ("PUT", "POST", "PATCH"):
            self.request.connection.set_max_body_size(self.max_body_size)
            self._queue = asyncio.Queue(maxsize=4)
            self._upstream = asyncio.ensure_future(self._forward(self._produce))

    def _upstream_path(self, name: str) -> str:
        prefix = url_path_join(self.base_url, "accel/runtimes", name)
        rest = self.request.path[len(prefix) :]  # "/contents/..." or "/files/..." (still escaped)
        if any(seg in ("..", ".") for seg in unquote(rest).split("/")):
            raise web.HTTPError(400, "path must not contain '.' or '..' segments")
        kind, _, tail = rest.lstrip("/").partition("/")
        base = "/api/contents" if kind == "contents" else "/files"
        path = base + ("/" + tail if tail else "")
        return path + ("?" + self.request.query if self.request.query else "")

    async def _offer(self, item) -> None:
        """Queue a body chunk for the runtime, unless the runtime already answered or failed
        (then the rest of the body is drained and dropped: never a hang on a full queue)."""
        if self._queue is None or self._upstream.done():
            return
        put = asyncio.ensure_future(self._queue.put(item))
        await asyncio.wait([put, self._upstream], return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()

    async def data_received(self, chunk: bytes):
        await self._offer(chunk)

    async def _produce(self, write):
        while True:
            chunk = await self._queue.get()
            if chunk is None:
                return
            await write(chunk)

    async def _forward(self, body_producer=None):
        status: dict = {}

        def on_header(line: str):
            if line.startswith("HTTP/"):
                status.clear()
                status["code"] = int(line.split()[1])
                status["headers"] = httputil.HTTPHeaders()
            elif line.strip():
                status["headers"].parse_line(line)

        def start_response():
            if status.get("sent"):
                return
            status["sent"] = True
            self.set_status(status["code"])
            for key in _PASS_DOWN:
                if key in status["headers"]:
                    self.set_header(key, status["headers"][key])

        def on_chunk(chunk: bytes):
            start_response()
            self.write(chunk)
            return self.flush()  # awaited by tornado's client: back-pressure

        method = self.request.method
        # A body on GET/HEAD/DELETE is not forwarded, so neither are its headers.
        headers = (
            {k: self.request.headers[k] for k in _PASS_UP if k in self.request.headers}
            if method in ("PUT", "POST", "PATCH")
            else {}
        )
        kw = {"body_producer": body_producer} if body_producer else {}
        if method in ("PUT", "POST", "PATCH") and not body_producer:
            kw["body"] = b""
        req = self.rt.request(
            self.upstream_path,
            method,
            timeout=3600,
            headers=headers,
            header_callback=on_header,
            streaming_callback=on_chunk,
            decompress_response=False,
            follow_redirects=False,
            **kw,
        )
        try:
            resp = await self.registry.http.fetch(req, raise_error=False)
        except OSError as e:
            raise web.HTTPError(502, f"runtime {self.rt.name!r} unreachable: {e}") from None
        if not status.get("sent"):
            status.setdefault("code", resp.code)
            status.setdefault("headers", resp.headers)
            if status["code"] == 599:
                raise web.HTTPError(502, f"runtime {self.rt.name!r} failed: {resp.error}")
            start_response()
        self.finish()

    async def _finish_upload(self):
        await self._offer(None)
        await self._upstream

    @web.authenticated
    async def get(self, name, rest=None):
        await self._forward()

    head = delete = get

    @web.authenticated
    async def put(self, name, rest=None):
        await self._finish_upload()

    post = patch = put

    def on_connection_close(self):
        if self._upstream is not None and not self._upstream.done():
            self._upstream.cancel()


class MountsProxyHandler(AccelHandler):
    """/accel/runtimes/{name}/mounts[/...] -> /api/accel/mounts[/...]."""

    async def _pass(self, name, rest):
        rt = await self.runtime(name, accel=True)
        path = "/api/accel/mounts" + (rest or "")
        if self.request.query:
            path += "?" + self.request.query
        body = self.request.body if self.request.method in ("POST", "PUT", "PATCH") else None
        await self.relay_json(
            rt, path, self.request.method, body=body, headers={"Content-Type": "application/json"}
        )

    @web.authenticated
    @authorized
    async def get(self, name, rest=None):
        await self._pass(name, rest)

    post = put = patch = delete = get


class MetricsSnapshotHandler(AccelHandler):
    """GET /accel/runtimes/{name}/metrics -> /api/accel/metrics."""

    @web.authenticated
    @authorized
    async def get(self, name):
        rt = await self.runtime(name, accel=True)
        await self.relay_json(rt, "/api/accel/metrics")
