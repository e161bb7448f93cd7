"""Secrets in a kernel, as in Colab: `from accel_gateway import userdata; userdata.get("HF_TOKEN")`.

The value comes over this runtime's private socket (path in ACCEL_SECRETS_SOCKET), answered by
the JupyterLab server that started the kernel; the first read from a notebook asks the user to
grant it. Nothing is printed or stored here: the value is only the return value.
"""

from __future__ import annotations

import json
import os
import socket

SOCKET_ENV = "ACCEL_SECRETS_SOCKET"


class SecretsError(RuntimeError):
    """The secret could not be read (no server, not supported, malformed request)."""


class SecretNotFoundError(SecretsError, KeyError):
    """No secret of that name in the user's Secrets panel."""

    def __str__(self):  # KeyError would quote the message
        return RuntimeError.__str__(self)


class NotebookAccessError(SecretsError, PermissionError):
    """The user denied (or did not grant) this notebook access to the secret."""


ERRORS = {
    "SecretNotFoundError": SecretNotFoundError,
    "NotebookAccessError": NotebookAccessError,
}


def get(name: str, timeout: float = 310) -> str:
    """The value of the secret `name`; raises SecretNotFoundError or NotebookAccessError."""
    if not isinstance(name, str) or not name:
        raise ValueError("the secret name must be a non-empty string")
    path = os.environ.get(SOCKET_ENV)
    if not path:
        raise SecretsError("secrets are not supported by this runtime (no secrets socket)")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        try:
            conn.connect(path)
            conn.sendall(json.dumps({"name": name}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as e:
            raise SecretsError(f"could not reach this runtime's secrets socket: {e}") from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise SecretsError("no answer from this runtime's secrets socket") from None
    if "value" in answer:
        return answer["value"]
    raise ERRORS.get(answer.get("error"), SecretsError)(answer.get("message") or "secret refused")
