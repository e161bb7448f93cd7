"""What to mount: a parsed, validated storage source and how its credentials reach rclone.

Credentials travel only as RCLONE_CONFIG_<REMOTE>_<KEY> environment variables of the rclone
child: never on its command line, in a log or in a response.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field

REMOTE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# rclone types a user may enter; the server's own remotes may be of any type.
USER_TYPES = (
    "s3",
    "gcs",
    "google cloud storage",
    "azureblob",
    "drive",
    "webdav",
    "sftp",
    "local",
    "b2",
    "swift",
    "dropbox",
    "onedrive",
    "box",
    "http",
    "ftp",
)
# Backends that wrap one other remote, named by their `remote` setting.
WRAPPER_TYPES = ("alias", "crypt", "chunker", "compress", "hasher", "cache")
# Backends that reach this host's files by design, or several remotes given as paths.
HOST_TYPES = ("local", "union", "combine")
# Backend types a caller's `config` may use by default (MountManager.backend_types).
DEFAULT_BACKEND_TYPES = USER_TYPES + WRAPPER_TYPES + ("union", "combine")
# Settings that read a file of this host, run a command on it, or use its identity (sftp's
# `ssh`, webdav's `bearer_token_command`, s3/gcs/azure `env_auth`, `*_file` keys, ...).
HOST_SETTING_SUFFIXES = ("_file", "_path", "_command", "_cmd")
HOST_SETTINGS = (
    "ssh",
    "env_auth",
    "use_msi",
    "use_cli",
    "use_az",
    "key_use_agent",
    "ca_cert",
    "client_cert",
    "client_key",
    "upstreams",
)


class MountError(Exception):
    """A refusal or failure with an HTTP status and a machine-readable reason."""

    def __init__(self, message: str, reason: str = "bad_request", status: int = 400):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.status = status


# How rclone words the failures a user can fix, and what to tell them.
_CREDENTIALS = (
    "unauthorized",
    "forbidden",
    "accessdenied",
    "access denied",
    "invalidaccesskeyid",
    "signaturedoesnotmatch",
    "invalid_grant",
    "authentication failed",
    "unable to authenticate",
    "permission denied",
)
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "network is unreachable",
    "i/o timeout",
    "context deadline exceeded",
    "tls: ",
    "x509: ",
)


def explain(detail: str, spec: str, fallback: str = "mount_failed") -> MountError:
    """A MountError for rclone's `detail` (already scrubbed) that says what to do."""
    low = detail.lower()
    if "is it obscured" in low:
        return MountError(
            f"{spec}: a password setting is not obscured; pass the output of "
            f"`rclone obscure PASSWORD` ({detail})",
            "bad_config",
            400,
        )
    if "nosuchbucket" in low or "bucket not found" in low or "bucket does not exist" in low:
        return _not_found(spec, detail, bucket=True)
    if re.search(r"\b40[13]\b", low) or any(word in low for word in _CREDENTIALS):
        return MountError(
            f"{spec}: the storage refused the credentials; check the key, secret, user, "
            f"password or token in the remote's settings ({detail})",
            "bad_credentials",
            400,
        )
    if any(word in low for word in _UNREACHABLE):
        return MountError(
            f"{spec}: cannot reach the storage; check the endpoint or URL and that this "
            f"runtime can reach it ({detail})",
            "unreachable",
            503,
        )
    return MountError(f"{spec}: rclone failed: {detail}", fallback, 502)


def _not_found(spec: str, detail: str, bucket: bool) -> MountError:
    what = "bucket" if bucket else "folder"
    return MountError(
        f"{spec}: the {what} does not exist on the remote; create it first or check its name "
        f"({detail})",
        "bucket_not_found" if bucket else "source_not_found",
        404,
    )


@dataclass
class Source:
    remote: str  # rclone remote name ("" for a local path on this host)
    path: str
    type: str
    settings: dict = field(default_factory=dict, repr=False)  # backend settings, secrets included
    server_remote: bool = False  # configured by the operator (settings may come from rclone.conf)
    linked: dict = field(default_factory=dict, repr=False)  # env of a server remote it wraps

    @property
    def spec(self) -> str:
        """The rclone argument naming the source: `remote:path` (no secrets) or a local path."""
        return f"{self.remote}:{self.path}" if self.remote else self.path

    def env(self) -> dict:
        """Environment for rclone carrying this remote's settings."""
        if not self.remote:
            return {}
        prefix = f"RCLONE_CONFIG_{self.remote.upper()}_"
        own = {prefix + k.upper(): _value(v) for k, v in self.settings.items()}
        return {**self.linked, **own}

    def key(self) -> str:
        """Stable id of (storage, path): names the cache dir kept across restarts.

        Settings (endpoint, keys) are part of it, so the same name pointing at other storage never
        inherits files still waiting in the cache for the first one.
        """
        blob = json.dumps(
            [self.remote, self.path, self.type, self.settings], sort_keys=True, default=str
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def secrets(self) -> list[str]:
        """Values to scrub from any message that might echo them."""
        values = [*self.settings.values(), *self.linked.values()]
        return [str(v) for v in values if isinstance(v, str) and len(v) >= 4]


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _check_path(path: str) -> str:
    if any(c in path for c in "\0\n\r"):
        raise MountError("source path contains control characters", "bad_source")
    return path


def check_settings(settings, where: str = "config") -> dict:
    if not isinstance(settings, dict):
        raise MountError(f"{where} must be an object of backend settings", "bad_config")
    out = {}
    for k, v in settings.items():
        if not isinstance(k, str) or not KEY_RE.match(k):
            raise MountError(
                f"{where}: bad setting name {k!r} (lower-case letters, digits, _)", "bad_config"
            )
        if not isinstance(v, (str, int, float, bool)) or isinstance(v, str) and "\0" in v:
            raise MountError(
                f"{where}: setting {k!r} must be a string, number or boolean", "bad_config"
            )
        out[k] = v
    if not isinstance(out.get("type"), str) or not out["type"]:
        raise MountError(
            f"{where} needs a backend 'type' (e.g. s3, gcs, webdav, sftp, drive)", "bad_config"
        )
    return out


def parse_source(source, config, server_remotes: dict, allow_local: bool = True) -> Source:
    """`source` is `REMOTE:PATH` (REMOTE configured on the server, or named by the caller with its
    settings in `config`), or an absolute local path on this host."""
    if not isinstance(source, str) or not source.strip():
        raise MountError("source is required, e.g. 'mys3:bucket/folder'", "bad_source")
    source = source.strip()
    if source.startswith((":", "-")):
        raise MountError(
            "source must be REMOTE:PATH; inline rclone connection strings and flags "
            "are refused (put settings in 'config')",
            "bad_source",
        )
    if config is not None:
        settings = check_settings(config)
        remote, sep, path = source.partition(":")
        if not sep:
            remote, path = "src", source
        if not REMOTE_RE.match(remote):
            raise MountError(f"bad remote name {remote!r} (letters, digits, _)", "bad_source")
        return Source(remote, _check_path(path), str(settings["type"]), settings)
    if source.startswith("/"):
        if not allow_local:
            raise MountError("local paths are not allowed as sources on this runtime", "bad_source")
        return Source("", _check_path(os.path.normpath(source)), "local")
    remote, sep, path = source.partition(":")
    if not sep or not REMOTE_RE.match(remote):
        raise MountError(
            "source must be REMOTE:PATH (or give 'config' with the backend settings)", "bad_source"
        )
    if remote not in server_remotes:
        names = ", ".join(sorted(server_remotes)) or "none"
        raise MountError(
            f"unknown remote {remote!r}: configured on this runtime: {names}; "
            "or pass 'config' with the backend settings",
            "unknown_remote",
        )
    info = server_remotes[remote]
    return Source(
        remote, _check_path(path), info["type"], dict(info.get("settings", {})), server_remote=True
    )


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "off")
    return bool(value)


def check_backend(source: Source, server_remotes: dict, allowed_types, allow_local: bool) -> None:
    """May a caller-configured source be mounted here? Checked after parsing and after the
    merge with the server's remotes, on the settings rclone will actually get.

    With local sources off, every way to reach this host through rclone is refused: the local,
    union and combine backends, wrappers (alias, crypt, chunker, ...) over anything but a remote
    configured on this runtime, and settings naming host files, commands or host credentials.
    """
    if source.server_remote or not source.remote:
        return  # the operator's own remotes; absolute paths were checked by parse_source
    if source.remote in server_remotes:
        raise MountError(
            f"remote name {source.remote!r} is taken by a remote configured on this runtime; "
            "give yours another name (settings of the two would mix)",
            "remote_name_taken",
        )
    kind = str(source.settings.get("type", "")).strip().lower()
    allowed = [t for t in allowed_types if allow_local or t not in HOST_TYPES]
    off = "" if allow_local else " (local sources are off)"
    if kind not in allowed:
        raise MountError(
            f"backend type {kind!r} is not allowed on this runtime{off}; allowed: "
            + ", ".join(allowed),
            "backend_not_allowed",
        )
    if kind in WRAPPER_TYPES:
        target = str(source.settings.get("remote", "")).strip()
        name, sep, _ = target.partition(":")
        known = sep and REMOTE_RE.match(name) and name in server_remotes
        if known:
            info = server_remotes[name]
            wrapped = Source(name, "", info["type"], dict(info.get("settings", {})))
            source.linked = wrapped.env()
        elif not allow_local:
            names = ", ".join(sorted(server_remotes)) or "none"
            raise MountError(
                f"a {kind} source must wrap a remote configured on this runtime ('remote': "
                f"'NAME:path', NAME one of: {names}); a local path or an inline remote is "
                f"refused{off}",
                "backend_not_allowed",
            )
    if allow_local:
        return
    for key, value in source.settings.items():
        if (key in HOST_SETTINGS or key.endswith(HOST_SETTING_SUFFIXES)) and _truthy(value):
            raise MountError(
                f"setting {key!r} is refused on this runtime: it would use this host's files, "
                f"commands or credentials{off}",
                "setting_not_allowed",
            )


def resolve_mount_point(workspace: str, mount_point, default: str = "drive") -> str:
    """Absolute mount point inside the workspace; anything outside it is refused."""
    if mount_point in (None, ""):
        mount_point = default
    if not isinstance(mount_point, str) or "\0" in mount_point:
        raise MountError("mount_point must be a path", "bad_mount_point")
    root = os.path.realpath(workspace)
    target = mount_point if os.path.isabs(mount_point) else os.path.join(root, mount_point)
    # realpath of the parent: a symlink may not lead out of the workspace.
    target = os.path.normpath(target)
    parent = os.path.realpath(os.path.dirname(target))
    full = os.path.join(parent, os.path.basename(target))
    if full == root or not full.startswith(root + os.sep):
        raise MountError(
            f"mount point must be a folder inside the workspace ({mount_point!r} is not)",
            "bad_mount_point",
        )
    if os.path.islink(full):  # the mount would land where the link points, maybe outside
        raise MountError(f"mount point {mount_point!r} is a symlink", "bad_mount_point")
    return full


def scrub(text: str, secrets: list[str]) -> str:
    for s in secrets:
        text = text.replace(s, "***")
    return text
