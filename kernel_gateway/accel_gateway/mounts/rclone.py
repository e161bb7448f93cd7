"""One live FUSE mount: an `rclone mount` child with its VFS cache and rc API on loopback.

Blocking code, run by the manager in worker threads. The rc API listens on 127.0.0.1 with a
random user and password that reach rclone through its environment (RCLONE_RC_USER/PASS).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

import requests

from .fuse import DEAD_MOUNT_ERRNOS, force_unmount, is_mounted, mount_error
from .locate import MISSING
from .source import MountError, Source, explain, scrub


@dataclass
class RcloneSettings:
    rclone: str = "rclone"
    rclone_config: str = ""
    cache_mode: str = "full"
    write_back: float = 2.0
    cache_max_size: str = "10G"
    dir_cache_time: float = 10.0
    poll_interval: float = 10.0


def rclone_env(source: Source, settings: RcloneSettings) -> dict:
    # Nothing of the gateway's own secrets or rclone settings leaks into the child.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RCLONE_") and k not in ("JUPYTER_TOKEN", "ACCEL_GATEWAY_INFO")
    }
    # A missing file makes rclone use only the environment's remotes.
    env["RCLONE_CONFIG"] = settings.rclone_config or os.devnull
    env.update(source.env())
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RcloneMount:
    """Start, watch, flush and stop one `rclone mount`."""

    live = True

    def __init__(
        self,
        source: Source,
        mount_point: str,
        cache_dir: str,
        log_file: str,
        settings: RcloneSettings,
        readonly: bool = False,
    ):
        self.source = source
        self.mount_point = mount_point
        self.cache_dir = cache_dir
        self.log_file = log_file
        self.settings = settings
        self.readonly = readonly
        self.proc: subprocess.Popen | None = None
        self._rc_url = ""
        self._rc_auth = ("", "")
        self.salvaged: list[str] = []

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float) -> None:
        s = self.settings
        os.makedirs(self.cache_dir, mode=0o700, exist_ok=True)
        self.salvaged = self.salvage()
        port = _free_port()
        user, password = "accel", secrets.token_urlsafe(24)
        env = rclone_env(self.source, s)
        env.update(RCLONE_RC_USER=user, RCLONE_RC_PASS=password)
        args = [
            s.rclone,
            "mount",
            self.source.spec,
            self.mount_point,
            "--vfs-cache-mode",
            s.cache_mode,
            "--vfs-write-back",
            f"{s.write_back}s",
            "--vfs-cache-max-size",
            s.cache_max_size,
            "--dir-cache-time",
            f"{s.dir_cache_time}s",
            "--poll-interval",
            f"{min(s.poll_interval, s.dir_cache_time * 0.9)}s",
            "--cache-dir",
            self.cache_dir,
            "--rc",
            "--rc-addr",
            f"127.0.0.1:{port}",
            "--log-file",
            self.log_file,
            "--log-level",
            "INFO",
        ]
        if self.readonly:
            args.append("--read-only")
        with open(self.log_file, "ab"):
            os.chmod(self.log_file, 0o600)
        # Own session: a signal to the gateway's process group must not kill rclone before the
        # gateway has flushed it.
        try:
            self.proc = subprocess.Popen(
                args,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise MountError(MISSING, "rclone_missing", 503) from None
        self._rc_url = f"http://127.0.0.1:{port}/"
        self._rc_auth = (user, password)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                detail = self.last_error() or f"rclone exited with {self.proc.returncode}"
                raise explain(detail, self.source.spec)
            if os.path.ismount(self.mount_point) and self._rc_ready():
                self._save_cache_paths()
                return
            time.sleep(0.05)
        self.stop()
        raise MountError(f"mount did not come up within {timeout:g}s", "timeout", 504)

    def _rc_ready(self) -> bool:
        try:
            self.rc("rc/noop", timeout=2)
            return True
        except Exception:
            return False

    def problem(self) -> str | None:
        """Why this mount is dead, or None while it serves."""
        if self.proc is None:
            return "not started"
        if self.proc.poll() is not None:
            return f"rclone exited with code {self.proc.returncode}"
        err = mount_error(self.mount_point)
        if err in DEAD_MOUNT_ERRNOS:
            return f"[Errno {err}] {os.strerror(err)}"
        if err is not None:
            return f"mount point unusable: {os.strerror(err)}"
        if not os.path.ismount(self.mount_point):
            return "mount point is no longer mounted"
        return None

    def stop(self) -> None:
        """Unmount and end rclone (callers flush first). Dirty files stay in the cache dir."""
        if is_mounted(self.mount_point):
            force_unmount(self.mount_point)
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        self.proc.send_signal(sig)
                        self.proc.wait(5)
                        break
                    except (subprocess.TimeoutExpired, ProcessLookupError):
                        continue
        if is_mounted(self.mount_point):
            force_unmount(self.mount_point)

    def unmount(self) -> None:
        self.stop()

    # -- crash salvage --------------------------------------------------------------------
    def _paths_file(self) -> str:
        return os.path.join(self.cache_dir, "accel-cache-paths.json")

    def _save_cache_paths(self) -> None:
        try:
            d = self.rc("vfs/stats").get("diskCache", {})
            with open(self._paths_file(), "w") as f:
                json.dump({"data": d["path"], "meta": d["pathMeta"]}, f)
        except Exception:
            pass

    def salvage(self) -> list[str]:
        """Upload closed files rclone itself would drop after a crash.

        rclone rewrites a cached file's metadata in place on close (truncate, then write): killed
        in those few milliseconds, it finds the metadata empty at the next start and deletes the
        cached data, a file the user had already closed (seen here with SIGKILL right after a
        write). Before rclone starts, such files go up directly: under their own name when the
        remote lacks them, else as `name (recovered <time>).ext` (never overwriting). Sparse data
        files are partial read caches, not writes, and are left alone.
        """
        try:
            with open(self._paths_file()) as f:
                paths = json.load(f)
        except (OSError, ValueError):
            return []
        env = rclone_env(self.source, self.settings)
        done = []
        for dirpath, _, files in os.walk(paths["meta"]):
            for name in files:
                meta = os.path.join(dirpath, name)
                try:
                    with open(meta) as f:
                        json.load(f)
                    continue
                except (OSError, ValueError):
                    pass
                rel = os.path.relpath(meta, paths["meta"])
                data = os.path.join(paths["data"], rel)
                try:
                    st = os.stat(data)
                except OSError:
                    continue
                if st.st_blocks * 512 < st.st_size:
                    continue
                dest = rel
                ls = subprocess.run(
                    [self.settings.rclone, "lsjson", "--files-only", self._remote(rel)],
                    env=env,
                    capture_output=True,
                    timeout=120,
                )
                if ls.returncode == 0 and json.loads(ls.stdout or b"[]"):
                    stem, ext = os.path.splitext(rel)
                    dest = f"{stem} (recovered {time.strftime('%Y-%m-%d %H%M%S')}){ext}"
                up = subprocess.run(
                    [self.settings.rclone, "copyto", data, self._remote(dest)],
                    env=env,
                    capture_output=True,
                    timeout=3600,
                )
                if up.returncode == 0:
                    done.append(dest)
                    for f in (meta, data):
                        os.remove(f)
        return done

    def _remote(self, rel: str) -> str:
        spec = self.source.spec
        return spec + ("" if spec.endswith((":", "/")) else "/") + rel

    # -- rc API ---------------------------------------------------------------------------
    def rc(self, method: str, timeout: float = 10, **params) -> dict:
        try:
            r = requests.post(
                self._rc_url + method, json=params, auth=self._rc_auth, timeout=timeout
            )
        except requests.RequestException as e:
            raise MountError(f"rclone is not answering ({self.problem() or e})", "mount_dead", 502)
        if r.status_code != 200:
            raise MountError(
                f"rclone rc {method}: {r.status_code} {r.text[:200]}", "rclone_rc", 502
            )
        return r.json()

    def stats(self) -> dict:
        """Upload counters of the VFS cache."""
        d = self.rc("vfs/stats").get("diskCache", {})
        return {
            "uploads_in_progress": d.get("uploadsInProgress", 0),
            "uploads_queued": d.get("uploadsQueued", 0),
            "errored_files": d.get("erroredFiles", 0),
            "cache_bytes": d.get("bytesUsed", 0),
        }

    def flush(self, timeout: float) -> None:
        """Upload now whatever waits for its write-back delay; return once nothing is pending."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                for item in self.rc("vfs/queue").get("queue") or []:
                    if not item.get("uploading") and item.get("expiry", 0) > 0:
                        self.rc("vfs/queue-set-expiry", id=item["id"], expiry=0)
            except MountError:
                pass  # an item may finish between the listing and the call
            st = self.stats()
            if st["uploads_in_progress"] + st["uploads_queued"] == 0:
                return
            if time.monotonic() > deadline:
                raise MountError(
                    f"flush timed out after {timeout:g}s with "
                    f"{st['uploads_in_progress'] + st['uploads_queued']} uploads "
                    f"pending: {self.last_error()}",
                    "flush_timeout",
                    504,
                )
            time.sleep(0.1)

    def refresh(self) -> None:
        """Forget cached directory listings so remote changes show at once."""
        self.rc("vfs/forget")

    def pending(self) -> dict:
        try:
            return self.stats()
        except Exception:
            return {}

    def last_error(self) -> str:
        """The last ERROR/CRITICAL line of rclone's log, scrubbed of the source's secrets."""
        try:
            with open(self.log_file, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_file) - 16384))
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        for line in reversed(lines):
            if "ERROR" in line or "CRITICAL" in line or "Fatal" in line:
                return scrub(line.split(" : ", 1)[-1].strip(), self.source.secrets())[:500]
        return ""
