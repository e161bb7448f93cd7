"""Mount storage from a notebook running on an accel gateway (Colab's `drive`, for any storage).

    from accel_gateway import drive
    drive.mount("/content/drive", "team:bucket/folder")         # a remote configured on the server
    drive.mount("data", "s3:bucket", config={"type": "s3", "provider": "AWS", ...})
    drive.flush()                 # returns once every change is on the remote
    drive.flush_and_unmount()

The kernel reaches its own gateway's REST API (/api/accel/mounts) with the URL and token the
gateway left for its kernels in a mode-0600 file named by $ACCEL_GATEWAY_INFO.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request

INFO_ENV = "ACCEL_GATEWAY_INFO"

__all__ = ["mount", "flush", "flush_and_unmount", "unmount", "mounts", "refresh", "DriveError"]


class DriveError(RuntimeError):
    """A mount operation failed; `reason` is the gateway's machine-readable cause."""

    def __init__(self, message: str, reason: str = "error", status: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.status = status


def _gateway() -> tuple[str, str]:
    path = os.environ.get(INFO_ENV)
    if not path:
        raise DriveError(
            "this kernel was not started by an accel gateway ($ACCEL_GATEWAY_INFO is "
            "not set), so it cannot mount storage",
            "no_gateway",
        )
    try:
        with open(path) as f:
            info = json.load(f)
    except (OSError, ValueError) as e:
        raise DriveError(f"cannot read the gateway's connection file: {e}", "no_gateway")
    return info["url"], info.get("token", "")


def _call(method: str, path: str, body: dict | None = None, timeout: float = 130):
    url, token = _gateway()
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"token {token}")
    ctx = None
    if url.startswith("https://"):
        # Loopback to our own gateway, whose certificate names its public host.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            raw = r.read()
    except urllib.error.HTTPError as e:
        try:
            err = json.loads(e.read() or b"{}")
        except ValueError:
            err = {}
        raise DriveError(
            err.get("message") or f"gateway answered {e.code}", err.get("reason", "error"), e.code
        ) from None
    except (urllib.error.URLError, OSError) as e:
        raise DriveError(f"cannot reach the gateway: {e}", "unreachable") from None
    return json.loads(raw) if raw else None


def mounts() -> list[dict]:
    """Status of every mount on this runtime (mode, pending uploads, events, errors)."""
    return _call("GET", "/api/accel/mounts")


def _find(mount_point: str | None) -> list[dict]:
    all_ = mounts()
    if mount_point is None:
        return all_
    if os.path.isabs(mount_point):
        target = os.path.realpath(mount_point)
        found = [m for m in all_ if os.path.realpath(m["path"]) == target]
    else:
        found = [m for m in all_ if m["mount_point"] == os.path.normpath(mount_point)]
    if not found:
        raise DriveError(f"nothing is mounted at {mount_point}", "not_mounted")
    return found


def mount(
    mount_point: str,
    source: str,
    config: dict | None = None,
    force_remount: bool = False,
    timeout: float = 120,
    readonly: bool = False,
    mode: str = "auto",
    secrets: dict | None = None,
) -> dict:
    """Mount `source` (REMOTE:PATH) at `mount_point`: an absolute path inside the workspace, or
    a path relative to the workspace. Returns the mount's status (see docs/mounts.md).

    config: backend settings for a source not configured on the server, e.g.
    {"type": "s3", "provider": "AWS", "access_key_id": ..., "secret_access_key": ...}.
    mode: "auto" (live where FUSE exists, else synced), "fuse" or "sync".
    secrets: config settings taken from the user's secrets by name, so no credential is typed
    into the notebook: {"secret_access_key": "S3_SECRET"} reads `userdata.get("S3_SECRET")`
    (asking the user to grant this notebook on the first read).
    """
    if secrets:
        from . import userdata

        if not isinstance(secrets, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in secrets.items()
        ):
            raise DriveError("secrets must map config settings to secret names", "bad_request")
        config = dict(config or {})
        for setting, name in secrets.items():
            config[setting] = userdata.get(name)
    # A relative mount point is relative to the workspace (the runtime's /content), as in the UI.
    body = {
        "mount_point": mount_point,
        "source": source,
        "force_remount": force_remount,
        "timeout": timeout,
        "readonly": readonly,
        "mode": mode,
    }
    if config is not None:
        body["config"] = config
    m = _call("POST", "/api/accel/mounts", body, timeout=timeout + 30)
    note = (
        ""
        if m["live"]
        else f" ({m['label']}: changes go up on flush, every few seconds and on unmount)"
    )
    print(f"Mounted at {m['path']}{note}")
    return m


def flush(mount_point: str | None = None, timeout: float = 600) -> None:
    """Return once every change written so far is on the remote (all mounts, or one)."""
    for m in _find(mount_point):
        _call("POST", f"/api/accel/mounts/{m['id']}/flush", {"timeout": timeout}, timeout + 30)


def refresh(mount_point: str | None = None) -> None:
    """Show remote changes now instead of after the directory cache time."""
    for m in _find(mount_point):
        _call("POST", f"/api/accel/mounts/{m['id']}/refresh", {}, 120)


def flush_and_unmount(mount_point: str | None = None, timeout: float = 600) -> None:
    """Upload everything, then unmount (all mounts, or the one at mount_point)."""
    for m in _find(mount_point):
        _call("DELETE", f"/api/accel/mounts/{m['id']}?timeout={timeout:g}", None, timeout + 30)
        print(f"Unmounted {m['path']}; all changes are on {m['source']}")


unmount = flush_and_unmount
