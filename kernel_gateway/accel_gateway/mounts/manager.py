"""MountManager: the gateway's mounts (live FUSE via rclone, or sync mode), their status and
lifecycle. No HTTP here; handlers and the kernel-side `drive` API go through it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from jupyter_core.paths import jupyter_data_dir
from traitlets import Bool, Dict, Enum, Float, Int, List, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from ..settings import at_least, positive
from .fuse import force_unmount, fuse_problem, is_mounted, mount_error
from .locate import MISSING, locate_rclone
from .rclone import RcloneMount, RcloneSettings, rclone_env
from .source import (
    DEFAULT_BACKEND_TYPES,
    HOST_TYPES,
    MountError,
    Source,
    check_backend,
    explain,
    parse_source,
    resolve_mount_point,
    scrub,
)
from .sync import SyncMount

SYNC_LABEL = "synced, not live"
# Backends whose first path segment is a bucket (or container) that must exist.
BUCKET_TYPES = ("s3", "gcs", "google cloud storage", "b2", "azureblob", "swift", "oos", "qingstor")
_LOG_PREFIX = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \w+\s*: ")


@dataclass
class Mount:
    id: str
    source: Source
    mount_point: str
    readonly: bool
    engine: RcloneMount | SyncMount
    state: str = "mounting"
    created: float = field(default_factory=time.time)
    restarts: int = 0
    error: str | None = None
    last_flush: float | None = None
    events: deque = field(default_factory=lambda: deque(maxlen=20))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def event(self, kind: str, message: str) -> None:
        self.events.append({"time": time.time(), "kind": kind, "message": message})


class MountManager(LoggingConfigurable):
    """Mounts storage into the workspace: rclone FUSE mounts, or sync mode without FUSE."""

    workspace = Unicode(help="Folder mount points live in (the gateway's workspace; set by setup).")
    state_dir = Unicode(
        config=True,
        help="Kept across restarts: rclone's VFS cache (files not yet "
        "uploaded at a crash go up at the next mount of the same source), sync "
        "manifests and rclone logs.",
    )
    default_mount_point = Unicode(
        "drive", config=True, help="Mount point, relative to the workspace, when none is given."
    )
    remotes = Dict(
        config=True,
        help="Server-configured remotes: name -> rclone backend settings, "
        "e.g. {'team': {'type': 's3', 'provider': 'AWS', 'env_auth': True}}. Only names "
        "and types are ever shown to users.",
    )
    rclone_config = Unicode(
        "",
        config=True,
        help="An rclone.conf whose remotes are offered too (mode 0600 recommended). Empty: none.",
    )
    rclone = Unicode(
        "rclone",
        config=True,
        help="The rclone executable: a path, or a name. The default 'rclone' is looked for "
        "next to the gateway's Python first (where `pip install "
        "'jupyterlab-accel-gateway[mounts]'` puts it, PATH or not), then on PATH.",
    )
    backend_types = List(
        Unicode(),
        list(DEFAULT_BACKEND_TYPES),
        config=True,
        help="rclone backend types a mount request's own `config` may use (the server's "
        "`remotes` may be of any type). With allow_local_sources off, local, union and "
        "combine are refused, wrappers must wrap a server remote, and settings naming host "
        "files, commands or host credentials are refused.",
    )
    mode = Enum(
        ["auto", "fuse", "sync"],
        "auto",
        config=True,
        help="auto: a live FUSE mount where /dev/fuse and fusermount3 exist, else sync "
        "mode. fuse / sync: always that (a request may still ask for sync).",
    )
    cache_mode = Enum(
        ["full", "writes"],
        "full",
        config=True,
        help="rclone --vfs-cache-mode ('off' breaks seek and rewrite).",
    )
    write_back = Float(
        2.0,
        config=True,
        help="Seconds after a file's last close before rclone "
        "uploads it (--vfs-write-back). flush() uploads at once anyway.",
    )
    cache_max_size = Unicode("10G", config=True, help="Cap of rclone's VFS cache per mount.")
    dir_cache_time = Float(
        10.0,
        config=True,
        help="Seconds a directory listing is cached: a file "
        "added on the remote shows within this time (--dir-cache-time).",
    )
    sync_interval = Float(30.0, config=True, help="Sync mode: seconds between push/pull rounds.")
    watchdog_interval = Float(
        5.0, config=True, help="Seconds between health checks of live mounts."
    )
    max_restarts = Int(10, config=True, help="Watchdog remounts per mount before it gives up.")
    flush_timeout = Float(
        300.0, config=True, help="Longest wait for uploads on unmount and shutdown."
    )
    allow_local_sources = Bool(
        True,
        config=True,
        help="Allow this host's own files as sources: absolute paths, and rclone backends or "
        "settings that reach the host (see backend_types). Turn off on shared runtimes.",
    )

    @validate("sync_interval", "watchdog_interval", "dir_cache_time", "flush_timeout")
    def _check_positive_seconds(self, proposal):
        return positive(self, proposal, "seconds")

    @validate("write_back")
    def _check_write_back(self, proposal):
        return at_least(self, proposal, 0, "seconds")

    @validate("max_restarts")
    def _check_max_restarts(self, proposal):
        return at_least(self, proposal, 0, "restarts")

    @default("state_dir")
    def _default_state_dir(self):
        return os.path.join(jupyter_data_dir(), "accel_gateway", "mounts")

    def __init__(self, **kw):
        super().__init__(**kw)
        self.mounts: dict[str, Mount] = {}
        self._claim = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []

    # -- configuration --------------------------------------------------------------------
    def rclone_path(self) -> str | None:
        """The rclone executable this gateway runs (see locate.py), None when there is none."""
        return locate_rclone(self.rclone)

    def rclone_problem(self) -> str | None:
        return None if self.rclone_path() else MISSING

    def allowed_backend_types(self) -> list[str]:
        return [t for t in self.backend_types if self.allow_local_sources or t not in HOST_TYPES]

    def settings(self) -> RcloneSettings:
        return RcloneSettings(
            self.rclone_path() or self.rclone,
            self.rclone_config,
            self.cache_mode,
            self.write_back,
            self.cache_max_size,
            self.dir_cache_time,
            self.dir_cache_time,
        )

    def server_remotes(self) -> dict:
        """name -> {type, settings}; from the `remotes` trait and `rclone_config`."""
        out = {}
        rclone = self.rclone_path()
        if rclone and self.rclone_config and os.path.exists(self.rclone_config):
            try:
                r = subprocess.run(
                    [rclone, "listremotes", "--long"],
                    capture_output=True,
                    text=True,
                    timeout=20,
                    env={**os.environ, "RCLONE_CONFIG": self.rclone_config},
                )
                for line in r.stdout.splitlines():
                    name, _, typ = line.partition(":")
                    if name.strip():
                        out[name.strip()] = {"type": typ.strip(), "settings": {}}
            except (OSError, subprocess.SubprocessError) as e:
                self.log.warning("Cannot list remotes of %s: %s", self.rclone_config, e)
        for name, settings in self.remotes.items():
            out[name] = {"type": str(settings.get("type", "")), "settings": dict(settings)}
        return out

    def fuse_problem(self) -> str | None:
        return fuse_problem(self.rclone)

    def describe(self) -> dict:
        """What the Mount drive dialog needs: remotes by name and type, and what mode to expect."""
        problem = self.fuse_problem()
        return {
            "remotes": [
                {"name": n, "type": r["type"]} for n, r in sorted(self.server_remotes().items())
            ],
            "fuse_available": problem is None,
            "fuse_problem": problem,
            "problem": self.rclone_problem(),  # set: no mount of any mode can be made
            "default_mode": self._pick_mode("auto", problem),
            "default_mount_point": self.default_mount_point,
            "backend_types": self.allowed_backend_types(),
        }

    def _pick_mode(self, requested: str, problem: str | None) -> str:
        want = requested if requested != "auto" else self.mode
        if want == "auto":
            return "fuse" if problem is None else "sync"
        if want == "fuse" and problem:
            raise MountError(
                f"a live mount is not possible here: {problem}; use mode 'sync'",
                "fuse_unavailable",
                409,
            )
        return want

    def _dirs(self, kind: str) -> str:
        d = os.path.join(self.state_dir, kind)
        os.makedirs(d, mode=0o700, exist_ok=True)
        return d

    # -- operations -----------------------------------------------------------------------
    def find(self, mount_id: str) -> Mount:
        m = self.mounts.get(mount_id)
        if m is None:
            raise MountError(f"no mount {mount_id!r}", "not_found", 404)
        return m

    def by_path(self, mount_point: str) -> Mount | None:
        return next((m for m in self.mounts.values() if m.mount_point == mount_point), None)

    async def mount(self, body: dict) -> Mount:
        if not isinstance(body, dict):
            raise MountError("body must be a JSON object")
        timeout = body.get("timeout", 120)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout <= 3600
        ):
            raise MountError("timeout must be a number of seconds in (0, 3600]")
        for flag in ("force_remount", "readonly"):
            if not isinstance(body.get(flag, False), bool):
                raise MountError(f"{flag} must be true or false")
        requested = body.get("mode", "auto")
        if requested not in ("auto", "fuse", "sync"):
            raise MountError("mode must be auto, fuse or sync")
        path = resolve_mount_point(
            self.workspace, body.get("mount_point"), self.default_mount_point
        )
        remotes = await asyncio.to_thread(self.server_remotes)
        source = parse_source(
            body.get("source"), body.get("config"), remotes, self.allow_local_sources
        )
        check_backend(source, remotes, self.backend_types, self.allow_local_sources)
        if problem := self.rclone_problem():
            raise MountError(problem, "rclone_missing", 503)
        mode = self._pick_mode(requested, self.fuse_problem())
        existing = self.by_path(path)
        if existing and not body.get("force_remount"):
            raise self._already_mounted(existing)
        await asyncio.to_thread(self.preflight, source, min(float(timeout), 60.0))

        async with self._claim:  # checks and registration are one step: no double mounts
            existing = self.by_path(path)
            if existing:
                if not body.get("force_remount"):
                    raise self._already_mounted(existing)
                await self.unmount(existing.id)
            await asyncio.to_thread(
                self._prepare_mount_point, path, body.get("force_remount", False)
            )
            engine = self._engine(mode, source, path, body.get("readonly", False))
            m = Mount(uuid.uuid4().hex[:12], source, path, engine.readonly, engine)
            self.mounts[m.id] = m
        try:
            async with m.lock:
                await asyncio.to_thread(engine.start, float(timeout))
        except BaseException:
            self.mounts.pop(m.id, None)
            await asyncio.to_thread(engine.stop)
            raise
        m.state = "mounted"
        if isinstance(engine, RcloneMount) and engine.salvaged:
            m.event("salvaged", "uploaded from the cache: " + ", ".join(engine.salvaged[:20]))
        label = "live" if engine.live else SYNC_LABEL
        m.event("mounted", f"{source.spec} at {self.rel(path)} ({label})")
        self.log.info("Mounted %s at %s (%s)", source.spec, path, mode)
        return m

    def _already_mounted(self, existing: Mount) -> MountError:
        return MountError(
            f"{self.rel(existing.mount_point)} is already mounted (id {existing.id}); "
            "pass force_remount to replace it",
            "already_mounted",
            409,
        )

    def preflight(self, source, timeout: float) -> None:
        """Ask the storage about the source before mounting, so wrong credentials, a missing
        bucket or an unreachable endpoint fail now with a message that says what to do, not
        later as I/O errors in a notebook. A missing folder is fine: the first write makes it."""
        if not source.remote:
            return
        missing = self._stat(source, source.path, timeout)
        if missing is None or source.type not in BUCKET_TYPES:
            return
        bucket = source.path.strip("/").split("/", 1)[0]
        if not bucket or bucket == source.path.strip("/") or self._stat(source, bucket, timeout):
            raise MountError(
                f"{source.spec}: the bucket does not exist on the remote; create it first or "
                f"check its name ({missing})",
                "bucket_not_found",
                404,
            )

    def _stat(self, source, path: str, timeout: float) -> str | None:
        """None when `remote:path` answers, rclone's 'not found' text when it does not exist;
        any other failure raises its MountError."""
        args = [self.rclone_path() or self.rclone, "lsjson", "--stat", "--retries", "1"]
        args += ["--low-level-retries", "1", "--contimeout", f"{max(1.0, timeout / 2):g}s"]
        args += ["--timeout", f"{timeout:g}s", f"{source.remote}:{path}"]
        try:
            r = subprocess.run(
                args,
                env=rclone_env(source, self.settings()),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout + 5,
            )
        except FileNotFoundError:
            raise MountError(MISSING, "rclone_missing", 503) from None
        except subprocess.TimeoutExpired:
            raise MountError(
                f"{source.spec}: the storage did not answer within {timeout:g}s; check the "
                "endpoint or URL and that this runtime can reach it",
                "unreachable",
                503,
            ) from None
        if r.returncode == 0:
            return None
        lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
        detail = scrub(_LOG_PREFIX.sub("", lines[-1]) if lines else "", source.secrets())[:500]
        if r.returncode == 3 or "directory not found" in detail or "not found" in detail:
            return detail or "not found"
        raise explain(detail or f"rclone exited with {r.returncode}", source.spec)

    def _engine(
        self, mode: str, source: Source, path: str, readonly: bool
    ) -> RcloneMount | SyncMount:
        log_file = os.path.join(self._dirs("logs"), f"{source.key()}.log")
        if mode == "fuse":
            # Two rclone processes must never share one cache dir.
            other = next(
                (
                    o
                    for o in self.mounts.values()
                    if o.engine.live and o.source.key() == source.key()
                ),
                None,
            )
            if other:
                raise MountError(
                    f"{source.spec} is already mounted at "
                    f"{self.rel(other.mount_point)} (id {other.id}); unmount it "
                    "first",
                    "source_in_use",
                    409,
                )
            engine: RcloneMount | SyncMount = RcloneMount(
                source,
                path,
                os.path.join(self._dirs("cache"), source.key()),
                log_file,
                self.settings(),
                readonly,
            )
            resumable = False
        else:
            key = source.key() + "-" + hashlib.sha256(path.encode()).hexdigest()[:8]
            synced = SyncMount(
                source,
                path,
                os.path.join(self._dirs("sync"), key + ".json"),
                log_file,
                self.settings(),
                readonly,
            )
            resumable = synced.has_manifest()  # our own copy, left by a crash or a stop
            engine = synced
        if os.listdir(path) and not resumable:
            raise MountError(
                f"{self.rel(path)} is not empty; mount into an empty or new folder",
                "mount_point_not_empty",
                409,
            )
        return engine

    def _prepare_mount_point(self, path: str, force: bool) -> None:
        if is_mounted(path):
            if mount_error(path) is None and not force:
                raise MountError(
                    f"{self.rel(path)} is already a mount point; pass force_remount",
                    "already_mounted",
                    409,
                )
            force_unmount(path)  # a dead mount left by a crash, or forced
        if os.path.exists(path) and not os.path.isdir(path):
            raise MountError(f"{self.rel(path)} exists and is not a folder", "bad_mount_point")
        os.makedirs(path, exist_ok=True)

    async def flush(self, mount_id: str, timeout: float | None = None) -> Mount:
        m = self.find(mount_id)
        async with m.lock:
            await asyncio.to_thread(m.engine.flush, timeout or self.flush_timeout)
        m.last_flush = time.time()
        m.event("flushed", "all changes uploaded")
        return m

    async def refresh(self, mount_id: str) -> Mount:
        m = self.find(mount_id)
        async with m.lock:
            await asyncio.to_thread(m.engine.refresh)
        return m

    async def unmount(self, mount_id: str, timeout: float | None = None) -> None:
        """Flush, then unmount. A failed flush leaves the mount in place and raises."""
        m = self.find(mount_id)
        async with m.lock:
            m.state = "unmounting"
            try:
                dead = await asyncio.to_thread(m.engine.problem) if m.engine.live else None
                if dead:
                    # Nothing to flush through a dead rclone; its cache dir keeps unsent files
                    # for the next mount of this source.
                    self.log.warning("Unmounting dead mount %s (%s)", m.mount_point, dead)
                else:
                    await asyncio.to_thread(m.engine.flush, timeout or self.flush_timeout)
                await asyncio.to_thread(m.engine.unmount)
            except BaseException as e:
                m.state = "mounted"
                m.error = str(e)
                raise
            self.mounts.pop(mount_id, None)
        self.log.info("Unmounted %s from %s", m.source.spec, m.mount_point)

    async def shutdown(self) -> None:
        """Gateway stop: flush every mount, then unmount live ones (sync copies stay, resumable)."""
        for m in list(self.mounts.values()):
            try:
                async with m.lock:
                    await asyncio.to_thread(m.engine.flush, self.flush_timeout)
                    await asyncio.to_thread(m.engine.stop)
                self.log.info("Flushed and stopped mount %s", m.mount_point)
            except Exception as e:
                self.log.error(
                    "Mount %s: flush at shutdown failed (%s); unsent files stay in %s "
                    "and go up at the next mount",
                    m.mount_point,
                    e,
                    self.state_dir,
                )
                await asyncio.to_thread(m.engine.stop)
        self.mounts.clear()
        for t in self._tasks:
            t.cancel()

    # -- status ---------------------------------------------------------------------------
    def rel(self, path: str) -> str:
        return os.path.relpath(path, os.path.realpath(self.workspace))

    def model(self, m: Mount) -> dict:
        p = m.engine.pending()
        queued, active = p.get("uploads_queued", 0), p.get("uploads_in_progress", 0)
        return {
            "id": m.id,
            "source": m.source.spec,
            "type": m.source.type,
            "mount_point": self.rel(m.mount_point),
            "path": m.mount_point,
            "mode": "fuse" if m.engine.live else "sync",
            "live": m.engine.live,
            "label": "live" if m.engine.live else SYNC_LABEL,
            "readonly": m.readonly,
            "state": m.state,
            "pending_uploads": queued + active,
            "uploads_in_progress": active,
            "uploads_queued": queued,
            "errored_uploads": p.get("errored_files", 0),
            "conflicts": p.get("conflicts", []),
            "created": m.created,
            "last_flush": m.last_flush,
            "last_sync": getattr(m.engine, "last_sync", None),
            "restarts": m.restarts,
            "error": m.error,
            "events": list(m.events),
        }

    async def list(self) -> list[dict]:
        return await asyncio.to_thread(lambda: [self.model(m) for m in list(self.mounts.values())])

    async def get(self, mount_id: str) -> dict:
        m = self.find(mount_id)
        return await asyncio.to_thread(self.model, m)

    # -- background -----------------------------------------------------------------------
    def start_background(self) -> None:
        from .watchdog import Watchdog

        wd = Watchdog(self)
        self._tasks = [asyncio.ensure_future(wd.run()), asyncio.ensure_future(self._sync_loop())]

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval)
            for m in list(self.mounts.values()):
                if not isinstance(m.engine, SyncMount) or m.state != "mounted" or m.lock.locked():
                    continue  # live (FUSE) mounts need no sync
                try:
                    async with m.lock:
                        await asyncio.to_thread(m.engine.sync)
                    m.error = None
                except Exception as e:
                    m.error = str(e)
                    m.event("sync_failed", str(e))
