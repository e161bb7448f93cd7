"""FileSync: a notebook's folder follows its kernel to a runtime, and what the kernel writes comes
back. The kernel manager calls `before_start` (push; the kernel then starts in that folder),
`track` once the kernel id is known (watch its activity, pull after each execution and on an
interval while one runs) and `forget` at shutdown (a last pull).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Bool, CaselessStrEnum, Float, Integer, List, Unicode
from traitlets.config import LoggingConfigurable

from .engine import FolderSync, RemoteFolder, SyncUnsupported
from .rules import SyncRules


class FileSync(LoggingConfigurable):
    mode = CaselessStrEnum(
        ["off", "notebook_folder", "whole_root"],
        default_value="notebook_folder",
        config=True,
        help="What follows a notebook to a runtime other than this machine: nothing, the "
        "notebook's folder (default), or the server's whole root.",
    )
    max_bytes = Integer(
        300 * 1000 * 1000,
        config=True,
        help="Size cap of what is copied to a runtime (bytes). Files over it stay here, the "
        "largest first; large data belongs on Mount drive.",
    )
    include_secrets = Bool(
        False,
        config=True,
        help="Also copy files that look like credentials (.env, *.pem, id_*, ...).",
    )
    ignore = List(
        Unicode(),
        config=True,
        help=".gitignore-style patterns left behind, on top of the defaults (.git, "
        "node_modules, virtualenvs, .ipynb_checkpoints, caches) and the folder's .gitignore.",
    )
    poll_interval = Float(
        1.0, config=True, help="Seconds between checks of a synced kernel's activity."
    )
    busy_pull_interval = Float(
        5.0, config=True, help="While a cell runs, bring its files back this often (seconds)."
    )
    transfer_timeout = Float(600.0, config=True, help="Timeout of one sync transfer (seconds).")

    def __init__(self, *, root_dir: str, state_dir: Path | None, **kw):
        super().__init__(**kw)
        self.root_dir = root_dir
        self.state_dir = state_dir
        self.folders: dict[tuple[str, str], FolderSync] = {}
        self.rules: dict[str, SyncRules] = {}  # by folder, shared by the runtimes it goes to
        self.kernels: dict[str, tuple[FolderSync, Any]] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.unsupported: dict[str, str] = {}  # kernel id -> reason, for status

    # -- wiring -----------------------------------------------------------------------
    def client(self, runtime) -> AsyncHTTPClient:
        """The runtime's HTTP client (its own connection limits), or a shared one."""
        get = getattr(runtime, "http_client", None)
        return get() if callable(get) else AsyncHTTPClient()

    async def fetch(self, runtime, path: str, method: str, *, body=None, timeout: float, **kw):
        headers = dict(kw.pop("headers", None) or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        if body is None and method in ("POST", "PUT") and "body_producer" not in kw:
            body = b""
        req = runtime.request(path, method, body=body, timeout=timeout, headers=headers, **kw)
        try:
            return await self.client(runtime).fetch(req, raise_error=False)
        except HTTPClientError as e:
            raise ConnectionError(str(e)) from None

    def supports(self, runtime, feature: str = "filesync") -> bool:
        info = getattr(runtime, "info", None)
        return isinstance(info, dict) and feature in (info.get("features") or [])

    def beside_start(self, runtime) -> bool:
        """The runtime makes a start's missing folder (`make_path`): push and start together."""
        return self.supports(runtime, "filesync_beside_start")

    def folder_for(self, kernel_path: str) -> str | None:
        if self.mode == "off":
            return None
        return "" if self.mode == "whole_root" else (kernel_path or "").strip("/")

    def sync_for(self, runtime, folder: str) -> FolderSync:
        key = (runtime.name, folder)
        fs = self.folders.get(key)
        if fs is None:
            rules = self.rules.get(folder)
            if rules is None:  # one per folder: a second runtime reuses the patterns' verdicts
                rules = self.rules[folder] = SyncRules(
                    self.root_dir,
                    folder,
                    max_bytes=self.max_bytes,
                    include_secrets=self.include_secrets,
                    extra_ignore=self.ignore,
                )
            record = None
            if self.state_dir is not None:
                digest = hashlib.sha256(folder.encode()).hexdigest()[:16]
                record = Path(self.state_dir) / "filesync" / runtime.name / f"{digest}.json"
            remote = RemoteFolder(runtime, self.fetch, timeout=self.transfer_timeout)
            fs = self.folders[key] = FolderSync(rules, remote, runtime.name, record)
        return fs

    # -- the kernel manager's hooks ---------------------------------------------------
    def wanted(self, runtime) -> bool:
        return self.mode != "off" and not getattr(runtime, "embedded", False)

    async def before_start(self, runtime, kernel_path: str) -> None:
        """Copy the folder to the runtime; a failure is shown in the status, the kernel starts."""
        folder = self.folder_for(kernel_path)
        if folder is None or not self.wanted(runtime) or not self.supports(runtime):
            return
        try:
            await self.sync_for(runtime, folder).push()
        except ValueError as e:  # a folder outside the root
            self.log.warning("File sync of %r skipped: %s", kernel_path, e)
        except Exception as e:
            self.log.warning("File sync of %r to %r failed: %s", kernel_path, runtime.name, e)

    def track(self, kernel_id: str, runtime, kernel_path: str, remote_id: str = "") -> None:
        folder = self.folder_for(kernel_path)
        if folder is None or not self.wanted(runtime):
            return
        if not self.supports(runtime):
            self.unsupported[kernel_id] = "not supported by this runtime"
            return
        try:
            fs = self.sync_for(runtime, folder)
        except ValueError:
            return
        self.kernels[kernel_id] = (fs, runtime)
        self.tasks[kernel_id] = asyncio.ensure_future(
            self._watch(kernel_id, remote_id or kernel_id, fs, runtime)
        )

    async def forget(self, kernel_id: str, final_pull: bool = True) -> None:
        self.unsupported.pop(kernel_id, None)
        task = self.tasks.pop(kernel_id, None)
        if task is not None:
            task.cancel()
        entry = self.kernels.pop(kernel_id, None)
        if entry is not None and final_pull:
            try:
                await entry[0].pull()
            except Exception as e:
                self.log.info("Last file sync of kernel %s failed: %s", kernel_id, e)

    def status(self, kernel_id: str) -> dict | None:
        if kernel_id in self.unsupported:
            return {"state": "unsupported", "message": self.unsupported[kernel_id]}
        entry = self.kernels.get(kernel_id)
        return entry[0].status() if entry else None

    async def sync_now(self, kernel_id: str) -> dict | None:
        entry = self.kernels.get(kernel_id)
        if entry is None:
            return self.status(kernel_id)
        await entry[0].push()
        return entry[0].status()

    async def stop(self) -> None:
        for kid in list(self.tasks):
            await self.forget(kid, final_pull=False)

    # -- watching a kernel ------------------------------------------------------------
    async def _watch(self, kernel_id: str, remote_id: str, fs: FolderSync, runtime) -> None:
        """Pull when the kernel's activity moved and it is idle, and every few s while busy."""
        seen_activity = None
        last_pull = time.monotonic()
        delay = self.poll_interval
        while True:
            await asyncio.sleep(delay)
            try:
                resp = await self.fetch(runtime, f"/api/kernels/{remote_id}", "GET", timeout=10)
            except (OSError, asyncio.TimeoutError):
                delay = min(delay * 2, 5.0)  # link down: keep trying, pull once it is back
                continue
            if resp.code == 404:  # the kernel ended (culled, died): a last pull, then stop
                self.tasks.pop(kernel_id, None)
                entry = self.kernels.pop(kernel_id, None)
                if entry is not None:
                    with contextlib.suppress(Exception):
                        await entry[0].pull()
                return
            if resp.code != 200:
                delay = min(delay * 2, 5.0)
                continue
            delay = self.poll_interval
            try:
                model = json.loads(resp.body)
            except ValueError:
                continue
            activity, state = model.get("last_activity"), model.get("execution_state")
            busy_due = state == "busy" and time.monotonic() - last_pull >= self.busy_pull_interval
            if (activity != seen_activity and state != "busy") or busy_due:
                try:
                    await fs.pull()
                    seen_activity = activity
                    last_pull = time.monotonic()
                except SyncUnsupported:
                    return
                except Exception as e:
                    self.log.info("File sync of kernel %s: %s", kernel_id, e)
