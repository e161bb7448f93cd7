"""The notebook's files on this runtime: a folder's manifest, tar uploads in, tar downloads out.

The server extension keeps a notebook's folder in step with the same relative folder of this
workspace (jupyterlab_accel/filesync/). Three calls, so a sync costs a few round trips whatever
the number of files:
- `POST /api/accel/filesync/manifest {path, prune}`: `{path, files: {rel: [size, mtime_ns]}}`;
- `PUT /api/accel/filesync/files?path=DIR`: an uncompressed tar, extracted under DIR (regular
  files and folders only, nothing outside DIR); answers the written files' `[size, mtime_ns]`;
- `POST /api/accel/filesync/fetch {path, files}`: those files as a tar stream.
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from jupyter_server.auth.decorator import authorized
from tornado import web

from .handlers import MAX_JSON_BODY, AccelHandler

MAX_MANIFEST_ENTRIES = 100_000
MAX_UPLOAD_BYTES = 8 << 30
CHUNK = 1 << 20


class FileSyncError(ValueError):
    """A request naming a path or member this gateway will not touch."""


def folder_in(workspace: str, rel: str) -> Path:
    """The workspace folder `rel` (POSIX, relative); refuses anything that leaves the workspace."""
    root = Path(workspace).resolve()
    parts = PurePosixPath(rel or "").parts
    if any(p in ("..", "") for p in parts) or PurePosixPath(rel or "").is_absolute():
        raise FileSyncError(f"path {rel!r} must be relative, without '..'")
    target = (root / Path(*parts)) if parts else root
    resolved = target.resolve()
    if resolved != root and root not in resolved.parents:
        raise FileSyncError(f"path {rel!r} leaves the workspace")
    return target


def manifest(folder: Path, prune: set[str]) -> tuple[dict[str, list[int]], bool]:
    """Regular files under `folder` (no links followed), as {rel: [size, mtime_ns]}."""
    files: dict[str, list[int]] = {}
    if not folder.is_dir():
        return files, False
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d not in prune]
        base = Path(dirpath)
        for name in filenames:
            p = base / name
            try:
                st = p.lstat()
            except OSError:
                continue
            if not p.is_file() or p.is_symlink():
                continue
            files[p.relative_to(folder).as_posix()] = [st.st_size, st.st_mtime_ns]
            if len(files) >= MAX_MANIFEST_ENTRIES:
                return files, True
    return files, False


def safe_member_path(folder: Path, name: str) -> Path:
    pure = PurePosixPath(name)
    if pure.is_absolute() or any(p == ".." for p in pure.parts) or not pure.parts:
        raise FileSyncError(f"tar member {name!r} must be a relative path without '..'")
    return folder.joinpath(*pure.parts)


def extract(archive: str, folder: Path) -> dict[str, list[int]]:
    """Regular files and folders of `archive` written under `folder`; links/devices refused."""
    written: dict[str, list[int]] = {}
    with tarfile.open(archive, mode="r:") as tar:
        for member in tar:
            target = safe_member_path(folder, member.name)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                raise FileSyncError(f"tar member {member.name!r} is not a regular file")
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink():
                target.unlink()
            src = tar.extractfile(member)
            assert src is not None
            tmp = target.with_name(f".{target.name}.accel-sync")
            with open(tmp, "wb") as out:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
            os.replace(tmp, target)
            st = target.stat()
            written[PurePosixPath(member.name).as_posix()] = [st.st_size, st.st_mtime_ns]
    return written


class FileSyncHandler(AccelHandler):
    def json_body(self) -> dict:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "body is not JSON", reason="bad_request") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "body must be a JSON object", reason="bad_request")
        return body

    def folder(self, rel) -> Path:
        if not isinstance(rel, str):
            raise web.HTTPError(400, "path must be a string", reason="bad_request")
        try:
            return folder_in(self.ctx.workspace, rel)
        except FileSyncError as e:
            raise web.HTTPError(400, str(e), reason="bad_path") from None


class ManifestHandler(FileSyncHandler):
    @web.authenticated
    @authorized
    def post(self):
        body = self.json_body()
        prune = body.get("prune") or []
        if not isinstance(prune, list) or not all(isinstance(p, str) for p in prune):
            raise web.HTTPError(400, "prune must be a list of folder names", reason="bad_request")
        files, truncated = manifest(self.folder(body.get("path", "")), set(prune))
        self.finish({"path": body.get("path", ""), "files": files, "truncated": truncated})


@web.stream_request_body
class UploadHandler(FileSyncHandler):
    max_body_size = MAX_UPLOAD_BYTES

    async def prepare(self):
        await super().prepare()
        self.request.connection.set_max_body_size(MAX_UPLOAD_BYTES)
        # Auth before any byte is stored: stream_request_body calls prepare first.
        if self.current_user is None:
            raise web.HTTPError(403)
        self.target = self.folder(self.get_query_argument("path", ""))
        fd, self.spool = tempfile.mkstemp(prefix=".accel-sync-", suffix=".tar")
        self.out = os.fdopen(fd, "wb")

    def data_received(self, chunk: bytes) -> None:
        self.out.write(chunk)

    def on_finish(self) -> None:
        self._drop_spool()

    def on_connection_close(self) -> None:
        self._drop_spool()

    def _drop_spool(self) -> None:
        out = getattr(self, "out", None)
        if out is not None and not out.closed:
            out.close()
        spool = getattr(self, "spool", None)
        if spool and os.path.exists(spool):
            os.unlink(spool)

    @web.authenticated
    @authorized
    def put(self):
        self.out.close()
        try:
            written = extract(self.spool, self.target)
        except FileSyncError as e:
            raise web.HTTPError(400, str(e), reason="bad_archive") from None
        except tarfile.TarError as e:
            raise web.HTTPError(400, f"not a tar archive: {e}", reason="bad_archive") from None
        self.finish({"files": written})


class FetchHandler(FileSyncHandler):
    max_body_size = MAX_JSON_BODY * 16

    @web.authenticated
    @authorized
    async def post(self):
        body = self.json_body()
        folder = self.folder(body.get("path", ""))
        names = body.get("files")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise web.HTTPError(400, "files must be a list of paths", reason="bad_request")
        members = []
        for name in names:
            try:
                p = safe_member_path(folder, name)
            except FileSyncError as e:
                raise web.HTTPError(400, str(e), reason="bad_path") from None
            if p.is_file() and not p.is_symlink():
                members.append((name, p))
        self.set_header("Content-Type", "application/x-tar")
        with tempfile.TemporaryFile() as spool:
            with tarfile.open(fileobj=spool, mode="w:") as tar:
                for name, p in members:
                    tar.add(str(p), arcname=name, recursive=False)
            spool.seek(0)
            while chunk := spool.read(CHUNK):
                self.write(chunk)
                await self.flush()
        self.finish()


def setup_filesync(ctx) -> None:
    """The notebook's files following it here (manifest, tar in, tar out)."""
    ctx.features.append("filesync")
    ctx.features.append("filesync_beside_start")  # a start's `make_path`: push and POST together
    ctx.handlers.extend(
        [
            (r"/api/accel/filesync/manifest", ManifestHandler, {"ctx": ctx}),
            (r"/api/accel/filesync/files", UploadHandler, {"ctx": ctx}),
            (r"/api/accel/filesync/fetch", FetchHandler, {"ctx": ctx}),
        ]
    )
