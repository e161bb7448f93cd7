"""Where the extension keeps its state: user-added runtimes, the kernel map, sessions.

Every file is written atomically with mode 0600 (it may hold runtime tokens)."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from traitlets import Unicode, default
from traitlets.config import Configurable

LOCK_FILE = "server.lock"
# Folders this process holds the lock of, with the open lock file (flock is per open file:
# a second open in the same process would conflict with the first).
_held: dict[str, int] = {}


class StateFolderLocked(RuntimeError):
    """Another process (a second server) holds the state folder."""


class AccelState(Configurable):
    """A private folder for jupyterlab_accel's files (cheap to build: reads config only)."""

    state_dir = Unicode(
        config=True,
        help="Folder for jupyterlab_accel's state (user-added runtimes with their tokens, the "
        "kernel-to-runtime map, the session database). Created with mode 0700.",
    )

    @default("state_dir")
    def _default_state_dir(self):
        return os.path.join(jupyter_data_dir(), "jupyterlab_accel")

    def path(self, name: str) -> Path:
        folder = Path(self.state_dir)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return folder / name

    def lock(self) -> None:
        """Hold the folder for this process's lifetime; StateFolderLocked names the holder.

        Two servers on one folder would prune each other's kernels and sessions."""
        folder = os.path.realpath(self.state_dir)
        if folder in _held:
            return
        path = self.path(LOCK_FILE)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StateFolderLocked(
                f"the jupyterlab_accel state folder {folder} is in use by another server "
                f"(pid {holder}); stop that server or give this one its own folder "
                "(AccelState.state_dir)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held[folder] = fd  # kept open: the lock goes when the process does

    def read_json(self, name: str, fallback):
        try:
            return json.loads(self.path(name).read_text())
        except FileNotFoundError:
            return fallback
        except (OSError, ValueError):
            return fallback

    def write_json(self, name: str, data) -> None:
        """Atomic write, mode 0600 from the first byte (never world-readable, even briefly)."""
        target = self.path(name)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def private_file(self, name: str) -> Path:
        """A path whose file exists with mode 0600 (for files others create, e.g. sqlite)."""
        p = self.path(name)
        fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
        os.chmod(p, 0o600)
        return p
