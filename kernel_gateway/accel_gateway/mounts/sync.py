"""Sync mode, for hosts without FUSE: a local copy kept in step with the remote by `rclone copy`.

"Synced, not live": files are copied down at mount; local changes go up on flush, on a timer and
on unmount; remote changes come down on the timer. Never deletes on the remote. A file changed on
both sides since the last sync is kept twice: the remote's version under its name, the local one
renamed `name (conflict <time>).ext` on both sides.

A manifest (per source and mount point, in the state dir) records each file's local and remote
(size, mtime) at its last sync; it is what tells a local change from a remote one, and lets a
mount resume after a crash with local changes still to push.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time

from .locate import MISSING
from .rclone import RcloneSettings, rclone_env
from .source import MountError, Source, scrub


def conflict_name(path: str, when: float | None = None) -> str:
    head, tail = os.path.split(path)
    stem, ext = os.path.splitext(tail)
    stamp = time.strftime("%Y-%m-%d %H%M%S", time.gmtime(time.time() if when is None else when))
    return os.path.join(head, f"{stem} (conflict {stamp}){ext}")


def _left(deadline: float) -> float:
    return max(1.0, deadline - time.monotonic())


class SyncMount:
    """Same interface as RcloneMount: start, problem, flush, stop, pending, refresh."""

    live = False

    def __init__(
        self,
        source: Source,
        mount_point: str,
        manifest_file: str,
        log_file: str,
        settings: RcloneSettings,
        readonly: bool = False,
    ):
        self.source = source
        self.mount_point = mount_point
        self.manifest_file = manifest_file
        self.log_file = log_file
        self.settings = settings
        self.readonly = readonly
        self.manifest: dict[str, dict] = {}
        self.last_sync: float | None = None
        self.conflicts: list[str] = []
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._stopped = False

    # -- rclone ---------------------------------------------------------------------------
    def _rclone(self, args: list[str], stdin: bytes | None = None, timeout: float = 600) -> bytes:
        cmd = [self.settings.rclone, *args, "--log-file", self.log_file, "--log-level", "INFO"]
        with open(self.log_file, "ab"):
            os.chmod(self.log_file, 0o600)
        try:
            self._proc = subprocess.Popen(
                cmd,
                env=rclone_env(self.source, self.settings),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except FileNotFoundError:
            raise MountError(MISSING, "rclone_missing", 503) from None
        try:
            out, err = self._proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
            raise MountError(f"rclone {args[0]} timed out after {timeout:g}s", "timeout", 504)
        if self._proc.returncode != 0:
            msg = scrub(
                err.decode(errors="replace").strip().splitlines()[-1:][0]
                if err.strip()
                else self.last_error(),
                self.source.secrets(),
            )
            raise MountError(f"rclone {args[0]} failed: {msg[:500]}", "sync_failed", 502)
        return out

    def _remote(self, rel: str = "") -> str:
        spec = self.source.spec
        if not rel:
            return spec
        return spec + ("" if spec.endswith((":", "/")) else "/") + rel

    def list_remote(self, timeout: float = 600) -> dict[str, list]:
        try:
            # Few retries: an unreachable remote should fail a mount in seconds, not minutes.
            out = self._rclone(
                [
                    "lsjson",
                    "-R",
                    "--files-only",
                    "--fast-list",
                    "--low-level-retries",
                    "3",
                    self._remote(),
                ],
                timeout=timeout,
            )
        except MountError as e:
            if "directory not found" in e.message:
                return {}
            raise
        return {e["Path"]: [e["Size"], e.get("ModTime", "")] for e in json.loads(out or b"[]")}

    def list_local(self) -> dict[str, list]:
        files = {}
        root = self.mount_point
        for dirpath, dirnames, filenames in os.walk(root):
            for name in filenames:
                full = os.path.join(dirpath, name)
                try:
                    st = os.lstat(full)
                except FileNotFoundError:
                    continue
                if os.path.isfile(full) and not os.path.islink(full):
                    files[os.path.relpath(full, root)] = [st.st_size, st.st_mtime_ns]
        return files

    def _copy(self, src: str, dst: str, paths: list[str], timeout: float = 3600) -> None:
        if paths:
            self._rclone(
                ["copy", src, dst, "--files-from0", "-", "--no-traverse"],
                stdin=b"\0".join(p.encode() for p in paths),
                timeout=timeout,
            )

    # -- state ----------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            with open(self.manifest_file) as f:
                self.manifest = json.load(f).get("files", {})
        except (OSError, ValueError):
            self.manifest = {}

    def _save(self) -> None:
        tmp = self.manifest_file + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(
                {
                    "source": self.source.spec,
                    "mount_point": self.mount_point,
                    "files": self.manifest,
                },
                f,
            )
        os.replace(tmp, self.manifest_file)

    def has_manifest(self) -> bool:
        return os.path.exists(self.manifest_file)

    def changed_local(self, local: dict | None = None) -> list[str]:
        local = self.list_local() if local is None else local
        return sorted(p for p, st in local.items() if self.manifest.get(p, {}).get("l") != st)

    # -- interface ------------------------------------------------------------------------
    def start(self, timeout: float) -> None:
        os.makedirs(self.mount_point, exist_ok=True)
        fresh = not self.has_manifest()
        self._load()
        try:
            self.sync(timeout=timeout)
        except BaseException:
            if fresh:  # the folder was empty: leave it so, ready for another try
                for name in os.listdir(self.mount_point):
                    full = os.path.join(self.mount_point, name)
                    shutil.rmtree(full) if os.path.isdir(full) else os.remove(full)
            raise

    def sync(self, push: bool = True, pull: bool = True, timeout: float = 600) -> dict:
        """One round: push local changes, pull remote ones, keep both on conflict."""
        with self._lock:
            if self._stopped:
                return {}
            deadline = time.monotonic() + timeout
            remote = self.list_remote(timeout)
            local = self.list_local()
            to_push, to_pull, conflicts = [], [], []
            for p in self.changed_local(local):
                rec = self.manifest.get(p)
                if p in remote and (rec is None or rec.get("r") != remote[p]):
                    conflicts.append(p)
                elif not self.readonly:
                    to_push.append(p)
            for p, rst in remote.items():
                rec = self.manifest.get(p)
                if p in conflicts or p in to_push:
                    continue
                if rec is None or rec.get("r") != rst:
                    to_pull.append(p)  # new or changed remotely; locally unchanged since
            for p in conflicts:
                # Keep both: the local version takes a conflict name, the remote's comes down.
                new = conflict_name(p)
                os.replace(os.path.join(self.mount_point, p), os.path.join(self.mount_point, new))
                local[new] = local.pop(p)
                if not self.readonly:
                    to_push.append(new)
                to_pull.append(p)
                self.conflicts.append(new)
            if push and to_push:
                self._copy(self.mount_point, self._remote(), to_push, _left(deadline))
                after = self.list_remote(_left(deadline))
                for p in to_push:
                    if p in after:
                        self.manifest[p] = {"l": local[p], "r": after[p]}
            if pull and to_pull:
                self._copy(self._remote(), self.mount_point, to_pull, _left(deadline))
                for p in to_pull:
                    try:
                        st = os.stat(os.path.join(self.mount_point, p))
                    except FileNotFoundError:
                        continue
                    self.manifest[p] = {"l": [st.st_size, st.st_mtime_ns], "r": remote[p]}
            self._save()
            self.last_sync = time.time()
            return {
                "pushed": len(to_push) if push else 0,
                "pulled": len(to_pull) if pull else 0,
                "conflicts": len(conflicts),
            }

    def problem(self) -> str | None:
        return None if os.path.isdir(self.mount_point) else "local copy folder is gone"

    def flush(self, timeout: float) -> None:
        if not self.readonly:
            self.sync(pull=False, timeout=timeout)

    def refresh(self) -> None:
        self.sync()

    def pending(self) -> dict:
        try:
            n = 0 if self.readonly else len(self.changed_local())
        except OSError:
            n = 0
        return {
            "uploads_in_progress": 0,
            "uploads_queued": n,
            "errored_files": 0,
            "conflicts": list(self.conflicts[-20:]),
        }

    def stop(self) -> None:
        """End syncing; the local copy and manifest stay, so a later mount resumes."""
        with self._lock:
            self._stopped = True

    def unmount(self) -> None:
        """After a flush: push any last change, then clear the local copy (an unmount leaves an
        empty folder). The folder is first moved aside, so a write racing the unmount lands in no
        half-state; what changed there is pushed before removal. A failed push removes nothing.
        """
        with self._lock:
            self._stopped = True
            aside = self.mount_point.rstrip("/") + f".unmounting-{os.getpid()}"
            os.replace(self.mount_point, aside)
            os.makedirs(self.mount_point, exist_ok=True)
            root, self.mount_point = self.mount_point, aside
            try:
                changed = [] if self.readonly else self.changed_local()
                self._copy(aside, self._remote(), changed)
            except Exception:
                os.rmdir(root)
                os.replace(aside, root)
                self._stopped = False
                raise
            finally:
                self.mount_point = root
            shutil.rmtree(aside, ignore_errors=True)
            try:
                os.remove(self.manifest_file)
            except FileNotFoundError:
                pass

    def last_error(self) -> str:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_file) - 8192))
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        for line in reversed(lines):
            if "ERROR" in line:
                return scrub(line.split(" : ", 1)[-1].strip(), self.source.secrets())[:500]
        return ""
