"""Per-runtime proxies: contents and files (streamed both ways), mounts, metrics snapshot.

Bodies are streamed in both directions with back-pressure: an upload is forwarded chunk by
chunk as it arrives (a bounded queue), a download is written to the client as it arrives from
the runtime (each chunk flushed before the next is read). A multi-GB file never sits in memory."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from urllib.parse import parse_qsl, unquote, urlencode

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import httputil, web
from tornado.iostream import StreamClosedError

from ..uploads import WriteBehindUpload
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
# A JupyterLab upload chunk: 1 MiB as base64 in JSON, about 1.4 MB; bodies up to this are read
# whole and looked at, larger ones stream through as they are.
MAX_CHUNK_BODY = 4 << 20
UPLOAD_IDLE = 120.0  # seconds without a chunk before a written-behind upload is dropped


# Query parameters that authenticate to *this* server: never forwarded to a runtime.
AUTH_PARAMS = frozenset({"token", "_xsrf"})


def forwarded_query(query: str) -> str:
    """The query string without this server's auth parameters (the runtime gets its own
    token in a header; it must never see ours)."""
    if not query:
        return ""
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in AUTH_PARAMS]
    return "?" + urlencode(kept) if kept else ""


def _upstream_failed(rt, error) -> web.HTTPError:
    return web.HTTPError(502, f"runtime {rt.name!r} unreachable or failed mid-request: {error}")


@web.stream_request_body
class FilesProxyHandler(AccelHandler):
    """/accel/runtimes/{name}/contents/{path} -> /api/contents/{path};
    /accel/runtimes/{name}/files/{path} -> /files/{path} (raw bytes).

    Each transfer runs on its own connection of the runtime (`Runtime.open_stream`): when the
    browser goes away the upstream connection is closed at once; when the runtime fails while
    a body is still arriving, the browser gets a 502 at once (the rest is not awaited)."""

    SUPPORTED_METHODS = ("GET", "HEAD", "PUT", "POST", "PATCH", "DELETE")
    max_body_size = MAX_CONTENTS_BODY
    _queue: asyncio.Queue | None = None
    _body: bytearray | None = None  # a body read whole: maybe a JupyterLab upload chunk
    _upstream: asyncio.Future | None = None
    _client_gone = False

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
        if self._client_gone:  # went away while we looked the runtime up
            raise web.Finish()
        producer = None
        if self.request.method in ("PUT", "POST", "PATCH"):
            self.request.connection.set_max_body_size(self.max_body_size)
            if await self._may_be_upload_chunk():
                self._body = bytearray()  # read whole; put() decides (uploads.py)
                return
            self._queue = asyncio.Queue(maxsize=4)
            producer = self._produce
        self._upstream = asyncio.ensure_future(self._forward(producer))
        if producer is not None:
            self._upstream.add_done_callback(self._upload_ended)

    def _upstream_path(self, name: str) -> str:
        prefix = url_path_join(self.base_url, "accel/runtimes", name)
        rest = self.request.path[len(prefix) :]  # "/contents/..." or "/files/..." (still escaped)
        decoded = unquote(rest)
        if any(seg in ("..", ".") for seg in decoded.split("/")):
            raise web.HTTPError(400, "path must not contain '.' or '..' segments")
        if any(ord(c) < 32 or c in "\\\x7f" for c in decoded):
            raise web.HTTPError(400, "path must not contain control characters or backslashes")
        kind, _, tail = rest.lstrip("/").partition("/")
        base = "/api/contents" if kind == "contents" else "/files"
        path = base + ("/" + tail if tail else "")
        return path + forwarded_query(self.request.query)

    def _upload_ended(self, fut: asyncio.Future) -> None:
        """The runtime failed before the whole upload arrived: answer now (tornado closes the
        connection after the answer and drops the rest of the body)."""
        if fut.cancelled() or self._finished:
            return
        error = fut.exception()
        if error is not None:
            if not isinstance(error, web.HTTPError):
                error = _upstream_failed(self.rt, error)
            self.send_error(error.status_code, exc_info=(type(error), error, None))

    async def _offer(self, item) -> None:
        """Queue a body chunk for the runtime, unless the runtime already answered or failed
        (then the rest of the body is drained and dropped: never a hang on a full queue)."""
        upstream = self._upstream  # set with the queue, in prepare
        if self._queue is None or upstream is None or upstream.done():
            return
        put = asyncio.ensure_future(self._queue.put(item))
        await asyncio.wait([put, upstream], return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()

    async def data_received(self, chunk: bytes):
        if self._body is not None:
            self._body += chunk
            return
        await self._offer(chunk)

    # -- JupyterLab's chunked uploads, written behind (uploads.py) ------------------------------
    async def _may_be_upload_chunk(self) -> bool:
        try:
            length = int(self.request.headers.get("Content-Length", ""))
        except ValueError:
            return False
        if (
            self.request.method != "PUT"
            or not self.upstream_path.startswith("/api/contents/")
            or length > MAX_CHUNK_BODY
        ):
            return False
        if self.rt.info is None:  # not asked yet since this server started
            await self.registry.check(self.rt)
        info = self.rt.info if isinstance(self.rt.info, dict) else {}
        return "uploads" in (info.get("features") or [])

    async def _put_buffered(self) -> None:
        body = bytes(self._body or b"")
        try:
            model = json.loads(body)
        except ValueError:
            model = None
        chunk = model.get("chunk") if isinstance(model, dict) else None
        if (
            isinstance(chunk, int)
            and not isinstance(chunk, bool)
            and model.get("type") == "file"
            and model.get("format") == "base64"
            and isinstance(model.get("content"), str)
            and await self._write_behind(chunk, model["content"])
        ):
            return
        self._upstream = asyncio.ensure_future(self._forward(body=body))
        await self._upstream

    async def _write_behind(self, chunk: int, content: str) -> bool:
        """True when this chunk was handled here; False: stock's own chunk rules apply."""
        path = unquote(self.upstream_path.split("?", 1)[0][len("/api/contents/") :])
        uploads = self.rt.uploads
        up = uploads.get(path)
        if chunk == 1:
            if up is not None:
                up.abort()  # the same file uploaded again: the newest upload wins
            up = uploads[path] = WriteBehindUpload(
                self.rt,
                path,
                stream_wait=self.registry.stream_wait,
                timeout=self.registry.stream_timeout,
            )
        elif up is None:
            if chunk == -1:
                return False  # a one-chunk append: the runtime's contents API does it
            raise web.HTTPError(
                409, f"no upload of {path!r} is in progress here (chunk 1 first): upload it again"
            )

        def drop() -> None:
            if uploads.get(path) is up:
                del uploads[path]
            up.abort()

        try:
            if chunk != -1 and chunk != up.last_chunk + 1:
                raise web.HTTPError(
                    400, f"chunk {chunk} of {path!r} came after chunk {up.last_chunk}"
                )
            try:
                data = base64.b64decode(content)
            except (binascii.Error, ValueError):
                raise web.HTTPError(400, f"chunk {chunk} of {path!r} is not base64") from None
            if chunk == 1:
                await up.begin(data)
            elif chunk == -1:
                del uploads[path]
                self.finish(await up.finish(data))
                return True
            else:
                await up.add(chunk, data)
        except BaseException:
            drop()
            raise
        up.expire_in(UPLOAD_IDLE, drop)
        self.finish(up.model())
        return True

    async def _produce(self, write):
        while True:
            chunk = await self._queue.get()
            if chunk is None:
                return
            await write(chunk)

    async def _forward(self, body_producer=None, body: bytes = b""):
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
            if gzip and "Content-Encoding" in status["headers"]:
                self.set_header("Content-Encoding", status["headers"]["Content-Encoding"])
            if gzip:
                self.set_header("Vary", "Accept-Encoding")

        def on_chunk(chunk: bytes):
            start_response()
            self.write(chunk)
            return self.flush()  # awaited by tornado's client: back-pressure

        method = self.request.method
        # A body on GET/HEAD/DELETE is not forwarded, so neither are its headers. Never
        # forwarded: cookies, Authorization, XSRF (the runtime gets its own token only).
        headers = (
            {k: self.request.headers[k] for k in _PASS_UP if k in self.request.headers}
            if method in ("PUT", "POST", "PATCH")
            else {}
        )
        # gzip from a runtime across the network goes to the browser as it came (no decoding
        # here), when the browser takes gzip; else the runtime is not asked for it.
        gzip = self.rt.compresses_http and "gzip" in self.request.headers.get("Accept-Encoding", "")
        if gzip:
            headers["Accept-Encoding"] = "gzip"
        kw = {"body_producer": body_producer} if body_producer else {}
        if method in ("PUT", "POST", "PATCH") and not body_producer:
            kw["body"] = body
        req = self.rt.request(
            self.upstream_path,
            method,
            timeout=self.registry.stream_timeout,
            headers=headers,
            header_callback=on_header,
            streaming_callback=on_chunk,
            decompress_response=False,
            follow_redirects=False,
            **kw,
        )
        try:
            slot = await self.rt.open_stream(self.registry.stream_wait)
        except ConnectionError as e:
            raise web.HTTPError(503, str(e)) from None
        if self._client_gone:
            slot.close()
            return
        try:
            resp = await slot.fetch(req)
        except (OSError, StreamClosedError) as e:
            raise _upstream_failed(self.rt, e) from None
        finally:
            slot.close()
        if not status.get("sent"):
            status.setdefault("code", resp.code)
            status.setdefault("headers", resp.headers)
            if status["code"] == 599:
                if "Timeout" in str(resp.error):
                    self.rt.mark_unhealthy("unreachable: timed out")
                raise _upstream_failed(self.rt, resp.error)
            start_response()
        elif resp.code == 599:  # the runtime went away mid-download: cut the download short
            self.request.connection.close()  # type: ignore[union-attr]  # HTTP1ServerConnection
            return
        self.finish()

    async def _finish_upload(self):
        await self._offer(None)
        try:
            await self._upstream
        except web.HTTPError:
            if not self._finished:
                raise  # else already answered by _upload_ended

    @web.authenticated
    async def get(self, name, rest=None):
        await self._upstream

    head = delete = get

    @web.authenticated
    async def put(self, name, rest=None):
        if self._body is not None:
            await self._put_buffered()
            return
        await self._finish_upload()

    post = patch = put

    def on_connection_close(self):
        self._client_gone = True
        if self._upstream is not None and not self._upstream.done():
            self._upstream.cancel()  # closes the upstream connection (StreamSlot.fetch)


# /accel/runtimes/{name}/mounts[...] sub-paths the gateway serves, and their methods.
_MOUNT_ID = r"[0-9a-f]{12}"
_MOUNT_ROUTES = [
    (re.compile(r"^/?$"), ("GET", "POST")),
    (re.compile(r"^/remotes$"), ("GET",)),
    (re.compile(rf"^/{_MOUNT_ID}$"), ("GET", "DELETE")),
    (re.compile(rf"^/{_MOUNT_ID}/(flush|refresh)$"), ("POST",)),
]


def mounts_upstream_path(method: str, rest: str | None, query: str) -> str:
    """The runtime path for a mounts request; HTTPError 400/404/405 for anything else
    (no '..', no encoded separators, no query but DELETE's numeric `timeout`)."""
    rest = rest or ""
    if "%" in rest or "\\" in rest:
        raise web.HTTPError(400, "mount paths take no escaped characters")
    for pattern, methods in _MOUNT_ROUTES:
        if pattern.match(rest):
            if method not in methods:
                raise web.HTTPError(405, f"{method} is not allowed on mounts{rest}")
            break
    else:
        raise web.HTTPError(404, f"no such mounts path: mounts{rest[:100]}")
    params = [
        (k, v)
        for k, v in parse_qsl(query, keep_blank_values=True)
        if k not in AUTH_PARAMS and not (k.isdigit() and v == "")  # JupyterLab's cache-buster
    ]
    path = "/api/accel/mounts" + rest.rstrip("/")
    if not params:
        return path
    if method != "DELETE" or [k for k, _ in params] != ["timeout"]:
        raise web.HTTPError(400, "mounts requests take no query parameters but DELETE's timeout")
    try:
        timeout = float(params[0][1])
    except ValueError:
        raise web.HTTPError(400, "timeout must be a number of seconds") from None
    if not 0 < timeout <= 3600:
        raise web.HTTPError(400, "timeout must be in (0, 3600] seconds")
    return f"{path}?timeout={timeout:g}"


class MountsProxyHandler(AccelHandler):
    """/accel/runtimes/{name}/mounts[/...] -> /api/accel/mounts[/...] (known sub-paths only)."""

    async def _pass(self, name, rest):
        method = self.request.method
        path = mounts_upstream_path(method, rest, self.request.query)
        rt = await self.runtime(name, accel=True)
        body = self.request.body if method in ("POST", "PUT", "PATCH") else None
        if method == "POST" and path == "/api/accel/mounts" and body:
            body = self.with_secrets(body)
        await self.relay_json(
            rt, path, method, body=body, headers={"Content-Type": "application/json"}
        )

    def with_secrets(self, body: bytes) -> bytes:
        """A mount's config settings given as `{"from_secret": NAME}` (the Mount drive dialog's
        secret fields) get the secret's value here: the browser never holds it. The user asked
        for the mount, so no per-notebook grant is involved."""
        try:
            data = json.loads(body)
        except ValueError:
            return body  # the runtime answers the 400
        config = data.get("config") if isinstance(data, dict) else None
        if not isinstance(config, dict):
            return body
        wanted = {
            k: v["from_secret"]
            for k, v in config.items()
            if isinstance(v, dict) and set(v) == {"from_secret"}
        }
        if not wanted:
            return body
        from ..secrets.service import service_of

        store = service_of(self).store
        for setting, name in wanted.items():
            if not isinstance(name, str) or not store.has(name):
                raise web.HTTPError(
                    400, f"config {setting!r}: no secret named {name!r}", reason="no_such_secret"
                )
            config[setting] = store.value(name)
        return json.dumps(data).encode()

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
