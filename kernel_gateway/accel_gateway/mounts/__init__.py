"""Mount drive: storage mounted into the workspace (rclone FUSE, or sync mode without FUSE).

`setup_mounts(ctx)` (listed in extension.FEATURE_SETUPS) builds the MountManager, tells kernels
how to reach it (for `accel_gateway.drive`), flushes every mount when the gateway stops, and adds
the /api/accel/mounts handlers.
"""

from __future__ import annotations

import ipaddress
import json
import os

from .manager import MountManager
from .source import MountError

__all__ = ["MountManager", "MountError", "setup_mounts"]

# Kernels find their gateway through this variable: the path of a mode-0600 file holding the
# gateway's loopback URL and token (never the token itself in an environment or command line).
INFO_ENV = "ACCEL_GATEWAY_INFO"


def kernel_url(serverapp) -> str:
    ip = serverapp.ip or "127.0.0.1"
    try:
        if ipaddress.ip_address(ip).is_unspecified:
            ip = "127.0.0.1" if ipaddress.ip_address(ip).version == 4 else "::1"
    except ValueError:
        ip = "127.0.0.1" if ip in ("localhost", "*") else ip
    host = f"[{ip}]" if ":" in ip else ip
    scheme = "https" if serverapp.certfile else "http"
    return f"{scheme}://{host}:{serverapp.port}{serverapp.base_url.rstrip('/')}"


def write_kernel_info(serverapp, path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        token = serverapp.identity_provider.token or ""
        json.dump({"url": kernel_url(serverapp), "token": token}, f)


def setup_mounts(ctx) -> None:
    serverapp = ctx.serverapp
    manager = MountManager(parent=serverapp, log=serverapp.log)
    manager.workspace = os.path.realpath(ctx.workspace)

    os.makedirs(serverapp.runtime_dir, exist_ok=True)
    info = os.path.join(serverapp.runtime_dir, f"accel-gateway-{os.getpid()}-kernels.json")
    ctx.kernel_env[INFO_ENV] = info  # every kernel this gateway starts gets it

    def started():
        write_kernel_info(serverapp, info)  # after start: the port is final
        manager.start_background()

    serverapp.io_loop.add_callback(started)

    # On stop (SIGTERM included): flush the mounts once the kernels are gone, so nothing
    # writes after the last flush.
    async def flush_after_kernels():
        await manager.shutdown()
        try:
            os.remove(info)
        except OSError:
            pass

    ctx.after_kernels_stopped(flush_after_kernels)

    from .handlers import rules

    ctx.features.extend(["mounts", "mounts_sync"])
    if manager.fuse_problem() is None:
        ctx.features.append("mounts_fuse")
    ctx.handlers.extend(rules(manager))
