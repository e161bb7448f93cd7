"""One notebook folder kept in step between this server's root and a runtime's workspace.

Only what changed moves: each side's files are compared by (size, mtime_ns) with what was last
synced (a record per file, kept in the state folder so a restarted server does not see every
file as changed). A file changed on both sides is a conflict: the local file stays, the runtime's
copy lands beside it as `name.conflict-RUNTIME.ext`, and the status says so. Deletions on
either side are reported, never propagated.
"""

from __future__ import annotations

import asyncio
import json
import os
import tarfile
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Awaitable, Callable
from urllib.parse import quote

from .rules import PRUNE_DIRS, Selection, SyncRules, conflict_name

Stat = tuple[int, int]  # (size, mtime_ns)
CHUNK = 1 << 20


class SyncUnsupported(Exception):
    """The runtime has no filesync API (a stock gateway)."""


class SyncFailed(Exception):
    """The runtime answered a sync call with an error."""


@dataclass
class Record:
    local: Stat
    remote: Stat


class RemoteFolder:
    """The runtime side of the three filesync calls (see accel_gateway/filesync.py)."""

    def __init__(self, runtime, fetch: Callable[..., Awaitable[Any]], timeout: float = 600):
        self.runtime = runtime
        self.fetch = fetch  # fetch(runtime, path, method, body=..., **kw) -> HTTPResponse
        self.timeout = timeout

    async def _call(self, path: str, method: str, **kw):
        resp = await self.fetch(self.runtime, path, method, timeout=self.timeout, **kw)
        if resp.code == 404:
            raise SyncUnsupported("not supported by this runtime")
        if resp.code >= 400 or resp.code == 599:
            try:
                message = json.loads(resp.body or b"{}").get("message") or resp.reason
            except ValueError:
                message = resp.reason
            raise SyncFailed(f"{path}: {resp.code} {message}")
        return resp

    async def manifest(self, folder: str) -> dict[str, Stat]:
        body = {"path": folder, "prune": sorted(PRUNE_DIRS)}
        resp = await self._call("/api/accel/filesync/manifest", "POST", body=body)
        files = json.loads(resp.body)["files"]
        return {rel: (int(v[0]), int(v[1])) for rel, v in files.items()}

    async def upload(self, folder: str, archive: str) -> dict[str, Stat]:
        size = os.path.getsize(archive)

        async def produce(write):
            with open(archive, "rb") as f:
                while chunk := f.read(CHUNK):
                    await write(chunk)

        resp = await self._call(
            f"/api/accel/filesync/files?path={quote(folder)}",
            "PUT",
            body_producer=produce,
            headers={"Content-Type": "application/x-tar", "Content-Length": str(size)},
        )
        files = json.loads(resp.body)["files"]
        return {rel: (int(v[0]), int(v[1])) for rel, v in files.items()}

    async def download(self, folder: str, names: list[str], into) -> None:
        await self._call(
            "/api/accel/filesync/fetch",
            "POST",
            body={"path": folder, "files": names},
            streaming_callback=lambda chunk: None if into.write(chunk) else None,
        )


class FolderSync:
    """`folder` (relative to the server's root, '' for all of it) on one runtime."""

    def __init__(
        self,
        rules: SyncRules,
        remote: RemoteFolder,
        runtime_name: str,
        record_file: Path | None = None,
        max_log: int = 200,
    ):
        self.rules = rules
        self.remote = remote
        self.runtime_name = runtime_name
        self.folder = rules.folder
        self.record_file = record_file
        self.records: dict[str, Record] = self._load_records()
        self.lock = asyncio.Lock()
        self.state = "idle"
        self.message = ""
        self.conflicts: list[str] = []
        self.deleted_on_runtime: list[str] = []
        self.left_behind: dict[str, Any] = {}
        self.log: deque[dict] = deque(maxlen=max_log)
        self.last_sync = 0.0
        self.pushed = self.pulled = 0

    # -- records ----------------------------------------------------------------------
    def _load_records(self) -> dict[str, Record]:
        if self.record_file is None or not self.record_file.is_file():
            return {}
        try:
            raw = json.loads(self.record_file.read_text())
            return {k: Record(tuple(v[0]), tuple(v[1])) for k, v in raw.items()}  # type: ignore[arg-type]
        except (ValueError, TypeError, IndexError):
            return {}

    def _save_records(self) -> None:
        if self.record_file is None:
            return
        self.record_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.record_file.with_suffix(".tmp")
        data = {k: [list(r.local), list(r.remote)] for k, r in self.records.items()}
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self.record_file)

    def _local_stat(self, rel: str) -> Stat | None:
        try:
            st = self.rules.local_path(rel).stat()
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns)

    def _note(self, action: str, rel: str, size: int = 0) -> None:
        self.log.append({"time": time.time(), "action": action, "path": rel, "bytes": size})

    # -- status -----------------------------------------------------------------------
    def status(self) -> dict:
        return {
            "state": self.state,
            "message": self.message,
            "runtime": self.runtime_name,
            "folder": self.folder,
            "files": len(self.records),
            "pushed": self.pushed,
            "pulled": self.pulled,
            "conflicts": list(self.conflicts),
            "deleted_on_runtime": list(self.deleted_on_runtime),
            "left_behind": self.left_behind,
            "last_sync": self.last_sync,
            "log": list(self.log),
        }

    def _settle(self) -> None:
        over = self.left_behind.get("over_cap_files")
        if self.conflicts:
            self.state = "conflict"
            self.message = (
                f"{len(self.conflicts)} file(s) changed both here and on the runtime: both kept "
                f"(the runtime's copy is named NAME.conflict-{self.runtime_name}.EXT)"
            )
        elif over:
            mb = self.left_behind.get("over_cap_bytes", 0) / 1e6
            self.state = "over_cap"
            self.message = (
                f"{over} file(s), {mb:.1f} MB, over the {self.rules.max_bytes / 1e6:.0f} MB cap "
                "stayed here: put large data on Mount drive"
            )
        else:
            self.state, self.message = "synced", ""
        self.last_sync = time.time()

    # -- push: before the kernel starts, and on demand --------------------------------
    async def push(self) -> None:
        async with self.lock:
            self.state = "syncing"
            try:
                # The local scan runs in a thread while the manifest crosses the link.
                remote, sel = await asyncio.gather(
                    self.remote.manifest(self.folder), asyncio.to_thread(self.rules.select)
                )
                if await self._pull_changed(remote):
                    sel = await asyncio.to_thread(self.rules.select)  # what came back, too
                await self._push_changed(remote, sel)
                self._save_records()
                self._settle()
            except BaseException as e:
                self._fail(e)
                raise

    async def _push_changed(self, remote: dict[str, Stat], sel: Selection) -> None:
        self.left_behind = {
            "ignored": sel.ignored,
            "secrets": sel.secrets,
            "links_out_of_root": sel.links_out,
            "over_cap_files": len(sel.over_cap),
            "over_cap_bytes": sel.over_cap_bytes,
        }
        send = []
        for rel, local in sel.files.items():
            rec = self.records.get(rel)
            if rec is not None and rec.local == local and remote.get(rel) == rec.remote:
                continue
            if rec is None and rel in remote and remote[rel][0] == local[0]:
                self.records[rel] = Record(local, remote[rel])  # same size, never recorded
                continue
            send.append(rel)
        if not send:
            return
        with tempfile.NamedTemporaryFile(suffix=".tar", delete=False) as spool:
            archive = spool.name
        try:
            sent = {}
            with tarfile.open(archive, mode="w:") as tar:
                for rel in send:
                    path = self.rules.local_path(rel)
                    info = tar.gettarinfo(str(path), arcname=rel)
                    if not info.isfile():
                        info = tar.gettarinfo(str(path.resolve()), arcname=rel)
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                    sent[rel] = (info.size, self._local_stat(rel))
            written = await self.remote.upload(self.folder, archive)
        finally:
            os.unlink(archive)
        for rel, (size, sent_stat) in sent.items():
            if rel in written and sent_stat is not None:
                self.records[rel] = Record(sent_stat, written[rel])
                self.pushed += 1
                self._note("up", rel, size)

    # -- pull: after executions, and on an interval while one runs --------------------
    async def pull(self) -> None:
        async with self.lock:
            self.state = "syncing"
            try:
                remote = await self.remote.manifest(self.folder)
                await self._pull_changed(remote)
                self._save_records()
                self._settle()
            except BaseException as e:
                self._fail(e)
                raise

    def _fail(self, e: BaseException) -> None:
        if isinstance(e, SyncUnsupported):
            self.state, self.message = "unsupported", "not supported by this runtime"
        elif isinstance(e, asyncio.CancelledError):
            self.state = "idle"
        else:
            self.state, self.message = "error", str(e) or type(e).__name__

    async def _pull_changed(self, remote: dict[str, Stat]) -> bool:
        """Bring back what changed on the runtime; True when a file was written here."""
        wanted: dict[str, str] = {}  # remote rel -> local rel to write (itself or a conflict name)
        budget = self.rules.max_bytes
        for rel, rstat in sorted(remote.items()):
            if self.rules.ignored(rel):
                continue
            rec = self.records.get(rel)
            if rec is not None and rec.remote == rstat:
                continue
            local = self._local_stat(rel)
            target = rel
            if rec is None:
                if local is not None and local[0] == rstat[0]:
                    self.records[rel] = Record(local, rstat)
                    continue
                if local is not None:
                    target = conflict_name(rel, self.runtime_name)
            elif local is not None and local != rec.local:
                target = conflict_name(rel, self.runtime_name)
            if rstat[0] > budget:
                self.left_behind["too_big_to_fetch"] = [
                    *self.left_behind.get("too_big_to_fetch", []),
                    rel,
                ]
                continue
            budget -= rstat[0]
            wanted[rel] = target
        gone = [rel for rel in self.records if rel not in remote]
        for rel in gone:
            del self.records[rel]
            if rel not in self.deleted_on_runtime:
                self.deleted_on_runtime.append(rel)
                self._note("deleted_on_runtime", rel)
        if not wanted:
            return False
        with tempfile.TemporaryFile() as spool:
            await self.remote.download(self.folder, list(wanted), spool)
            spool.seek(0)
            self._extract(spool, wanted, remote)
        return True

    def _extract(self, spool, wanted: dict[str, str], remote: dict[str, Stat]) -> None:
        with tarfile.open(fileobj=spool, mode="r:") as tar:
            for member in tar:
                rel = PurePosixPath(member.name).as_posix()
                if rel not in wanted or not member.isfile():
                    continue
                target_rel = wanted[rel]
                dest = self.rules.local_path(target_rel)
                if dest.is_symlink() or not self.rules.inside_root(dest.parent):
                    self._note("refused", target_rel)  # would write through a link
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                assert src is not None
                tmp = dest.with_name(f".{dest.name}.accel-sync")
                with open(tmp, "wb") as out:
                    while chunk := src.read(CHUNK):
                        out.write(chunk)
                os.replace(tmp, dest)
                if target_rel == rel:
                    local = self._local_stat(rel)
                    if local is not None:
                        self.records[rel] = Record(local, remote[rel])
                    self.pulled += 1
                    self._note("down", rel, member.size)
                else:
                    # Both kept; the runtime's version is now known, the local one stays as is.
                    local = self._local_stat(rel)
                    if local is not None:
                        self.records[rel] = Record(local, remote[rel])
                    if target_rel not in self.conflicts:
                        self.conflicts.append(target_rel)
                    self._note("conflict", target_rel, member.size)
