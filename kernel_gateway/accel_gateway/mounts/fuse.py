"""FUSE on this host: is it usable, is a path mounted or dead, and detaching it."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess

from .locate import MISSING, locate_rclone


def fuse_problem(rclone: str = "rclone") -> str | None:
    """Why a FUSE mount cannot be made here, or None. `rclone`: the MountManager.rclone setting."""
    if not os.path.exists("/dev/fuse"):
        return (
            "/dev/fuse is missing: enable FUSE on this host (in a container: "
            "--device /dev/fuse --cap-add SYS_ADMIN)"
        )
    if not fusermount():
        return "fusermount3 is not installed: enable FUSE with `apt-get install fuse3`"
    if locate_rclone(rclone) is None:
        return MISSING
    return None


def fusermount() -> str | None:
    return shutil.which("fusermount3") or shutil.which("fusermount")


# What a FUSE mount point answers once its process died: ENOTCONN, or ECONNABORTED when the
# death caught a request in flight.
DEAD_MOUNT_ERRNOS = frozenset({errno.ENOTCONN, errno.ECONNABORTED})


def mount_error(path: str) -> int | None:
    """errno of an unusable mount point (see DEAD_MOUNT_ERRNOS), else None."""
    try:
        os.stat(path)
        return None
    except OSError as e:
        return e.errno


def force_unmount(path: str) -> None:
    """Detach a mount (dead or alive); lazy as a last resort so a busy file cannot pin it."""
    fm = fusermount()
    if not fm:
        return
    for args in (["-u"], ["-uz"]):
        r = subprocess.run([fm, *args, path], capture_output=True, timeout=30)
        if r.returncode == 0:
            return


def is_mounted(path: str) -> bool:
    if mount_error(path) in DEAD_MOUNT_ERRNOS:
        return True
    return os.path.ismount(path)
