"""Where the extension keeps its state: user-added runtimes, the kernel map, sessions.

Every file is written atomically with mode 0600 (it may hold runtime tokens)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from traitlets import Unicode, default
from traitlets.config import Configurable


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
