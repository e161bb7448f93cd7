"""JupyterLab's chunked uploads to a runtime, written behind.

JupyterLab PUTs a big file as 1 MiB base64 chunks (`chunk` 1, 2, ..., -1 for the last), each
waiting for its answer: across a network the link idles a round trip per chunk and carries a
third more bytes than the file. For a runtime with our gateway's `uploads` feature the server
answers chunks itself once they are queued and streams their decoded bytes to the runtime in
one body (accel_gateway/uploads.py), so the link stays busy:
- chunk 1 begins the upload on the runtime (a bad path or folder answers here, as stock would);
- chunks 2, 3, ... are queued (at most `depth` at once: a slow link paces the browser) and
  answered at once; a failure of the runtime answers the next chunk (502);
- chunk -1 is answered when the runtime has the whole file, with its model.
The runtime writes to a hidden file and renames it over the path at the end, so an upload cut
short leaves the old file whole (stock truncates it at chunk 1).
"""

from __future__ import annotations

import asyncio
import json
import posixpath
from datetime import datetime, timezone
from urllib.parse import quote

from tornado import web

from .remote_kernel import upstream_error


def upload_failed(rt, what) -> web.HTTPError:
    return web.HTTPError(502, f"upload to runtime {rt.name!r} failed: {what}")


class WriteBehindUpload:
    """One file's chunks on their way to one runtime."""

    def __init__(self, rt, path: str, *, stream_wait: float, timeout: float, depth: int = 8):
        self.rt, self.path = rt, path
        self.stream_wait, self.timeout = stream_wait, timeout
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=depth)
        self.size = 0
        self.last_chunk = 0
        self.sending: asyncio.Future | None = None
        self.idle: asyncio.TimerHandle | None = None

    async def begin(self, first: bytes) -> None:
        resp = await self.rt.api("/api/accel/uploads", "POST", body={"path": self.path})
        if resp.code != 201:  # the runtime's status and message: a bad path answers as stock's
            raise upstream_error(resp, f"runtime {self.rt.name!r} refused the upload")
        upload_id = json.loads(resp.body)["id"]
        self.sending = asyncio.ensure_future(self._send(upload_id))
        await self.add(1, first)

    async def _send(self, upload_id: str) -> dict:
        async def produce(write):
            while (data := await self.queue.get()) is not None:
                await write(data)

        req = self.rt.request(
            f"/api/accel/uploads/{quote(upload_id)}",
            "PUT",
            timeout=self.timeout,
            body_producer=produce,
            headers={"Content-Type": "application/octet-stream"},
        )
        try:
            slot = await self.rt.open_stream(self.stream_wait)
        except ConnectionError as e:
            raise upload_failed(self.rt, e) from None
        try:
            resp = await slot.fetch(req)
        except OSError as e:
            raise upload_failed(self.rt, e) from None
        finally:
            slot.close()
        if resp.code != 200:
            raise upload_failed(self.rt, upstream_error(resp, "refused").log_message)
        return json.loads(resp.body)

    async def add(self, chunk: int, data: bytes) -> None:
        """Queue a chunk's bytes; waits while the queue is full; raises the upload's failure."""
        await self._put(data)
        self.size += len(data)
        self.last_chunk = chunk

    async def finish(self, data: bytes) -> dict:
        """The last chunk: answered with the runtime's model once the whole file is there."""
        if self.idle is not None:
            self.idle.cancel()
        await self.add(-1, data)
        await self._put(None)  # the end of the body
        assert self.sending is not None
        await asyncio.wait([self.sending])
        if self.sending.cancelled() or self.sending.exception() is not None:
            self.raise_failure()
        return self.sending.result()

    async def _put(self, item: bytes | None) -> None:
        sending = self.sending
        assert sending is not None
        if not sending.done():
            put = asyncio.ensure_future(self.queue.put(item))
            await asyncio.wait([put, sending], return_when=asyncio.FIRST_COMPLETED)
            if put.done():
                return
            put.cancel()
        self.raise_failure()

    def raise_failure(self) -> None:
        sending = self.sending
        if sending is None or sending.cancelled():
            raise upload_failed(self.rt, "cancelled")
        error = sending.exception()
        if isinstance(error, web.HTTPError):
            raise error
        raise upload_failed(self.rt, error or "the runtime answered before the end")

    def expire_in(self, seconds: float, drop) -> None:
        """`drop()` unless another chunk comes within `seconds`: a closed tab."""
        if self.idle is not None:
            self.idle.cancel()
        self.idle = asyncio.get_running_loop().call_later(seconds, drop)

    def abort(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        if self.sending is not None and not self.sending.done():
            self.sending.cancel()  # closes its connection: the runtime drops the hidden file

    def model(self) -> dict:
        """What a chunk before the last is answered with: the file so far, as stock's shape."""
        now = datetime.now(timezone.utc).isoformat()
        return {
            "name": posixpath.basename(self.path),
            "path": self.path,
            "type": "file",
            "format": None,
            "mimetype": None,
            "content": None,
            "writable": True,
            "created": now,
            "last_modified": now,
            "size": self.size,
        }
