"""A file streamed into the workspace in one body, for uploads written behind by the server.

JupyterLab uploads a big file as 1 MiB chunks, each waiting for its answer: across a network
that idles the link one round trip per chunk. The server extension instead answers the chunks
itself and streams their bytes here (jupyterlab_accel/uploads.py):
- `POST /api/accel/uploads {path}` checks the path (inside the workspace, its folder exists, not
  hidden unless allowed) and makes a hidden file beside it: `{id}` (errors answer here, cleanly);
- `PUT /api/accel/uploads/{id}` with the raw bytes as the body (any length, chunked) writes
  them there and, when the body ends, renames it over the path and answers its contents model
  (no content). A body cut short removes the hidden file: the old file, if any, stays whole.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path, PurePosixPath

from jupyter_client.jsonutil import json_default
from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from tornado import web

from .filesync import MAX_UPLOAD_BYTES, FileSyncError, FileSyncHandler, folder_in

PENDING_TTL = 600.0  # seconds an upload may wait between its POST and its PUT


class PendingUploads:
    """Upload id -> (hidden file, workspace path, created); stale ones are swept on each POST."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[Path, str, float]] = {}

    def add(self, spool: Path, path: str) -> str:
        self.sweep()
        upload_id = secrets.token_hex(16)
        self.items[upload_id] = (spool, path, time.monotonic())
        return upload_id

    def take(self, upload_id: str) -> tuple[Path, str] | None:
        item = self.items.pop(upload_id, None)
        return None if item is None else (item[0], item[1])

    def sweep(self) -> None:
        now = time.monotonic()
        for upload_id, (spool, _, created) in list(self.items.items()):
            if now - created > PENDING_TTL:
                del self.items[upload_id]
                spool.unlink(missing_ok=True)


class UploadsHandler(FileSyncHandler):
    def initialize(self, ctx, pending: PendingUploads):  # type: ignore[override]
        super().initialize(ctx)
        self.pending = pending


class BeginUploadHandler(UploadsHandler):
    @web.authenticated
    @authorized
    def post(self):
        path = self.json_body().get("path")
        if not isinstance(path, str) or not path.strip("/"):
            raise web.HTTPError(400, "path must name a file", reason="bad_path")
        path = path.strip("/")
        pure = PurePosixPath(path)
        if not self.contents_manager.allow_hidden and any(p.startswith(".") for p in pure.parts):
            raise web.HTTPError(400, f"Cannot create hidden file {path!r}", reason="bad_path")
        try:
            folder = folder_in(self.ctx.workspace, str(pure.parent) if pure.parent.parts else "")
        except FileSyncError as e:
            raise web.HTTPError(400, str(e), reason="bad_path") from None
        if not folder.is_dir():
            raise web.HTTPError(404, f"folder of {path!r} does not exist", reason="not_found")
        target = folder / pure.name
        if target.is_dir() or target.is_symlink():
            raise web.HTTPError(400, f"{path!r} is a folder or a link", reason="bad_path")
        spool = folder / f".{pure.name}.accel-upload-{secrets.token_hex(4)}"
        try:
            os.close(os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError as e:
            raise web.HTTPError(403, f"cannot write in the folder of {path!r}: {e.strerror}")
        self.set_status(201)
        self.finish({"id": self.pending.add(spool, path)})


@web.stream_request_body
class StreamUploadHandler(UploadsHandler):
    max_body_size = MAX_UPLOAD_BYTES
    out = None
    spool: Path | None = None

    async def prepare(self):
        await super().prepare()
        self.request.connection.set_max_body_size(MAX_UPLOAD_BYTES)
        if self.current_user is None:  # auth before any byte is stored
            raise web.HTTPError(403)
        taken = self.pending.take(self.path_kwargs["upload_id"])
        if taken is None:
            raise web.HTTPError(404, "no such upload (begin it with POST)", reason="not_found")
        self.spool, self.path = taken
        self.out = open(self.spool, "wb")  # noqa: SIM115 (closed in put or on a cut)

    def data_received(self, chunk: bytes) -> None:
        assert self.out is not None  # opened in prepare, which runs first
        self.out.write(chunk)

    def on_connection_close(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self.out is not None and not self.out.closed:
            self.out.close()
        if self.spool is not None:
            self.spool.unlink(missing_ok=True)

    @web.authenticated
    @authorized
    async def put(self, upload_id):
        assert self.out is not None and self.spool is not None
        self.out.close()
        target = self.spool.with_name(PurePosixPath(self.path).name)
        try:
            os.replace(self.spool, target)
        except OSError as e:
            self._drop()
            raise web.HTTPError(403, f"cannot write {self.path!r}: {e.strerror}") from None
        self.spool = None
        model = await ensure_async(self.contents_manager.get(self.path, content=False))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(model, default=json_default))


def setup_uploads(ctx) -> None:
    """Uploads streamed in one body (the server writes JupyterLab's chunks behind)."""
    kw = {"ctx": ctx, "pending": PendingUploads()}
    ctx.features.append("uploads")
    ctx.handlers.extend(
        [
            (r"/api/accel/uploads", BeginUploadHandler, kw),
            (r"/api/accel/uploads/(?P<upload_id>[0-9a-f]{32})", StreamUploadHandler, kw),
        ]
    )
