"""Secrets for kernels, asked for over a private Unix socket and answered by the server.

A kernel (`accel_gateway.userdata.get`) connects to a socket in a 0700 folder of this gateway;
the socket's path is in every kernel's environment (`ACCEL_SECRETS_SOCKET`, not a secret). The
gateway checks the caller with SO_PEERCRED (same user, a process of one of its kernels, found by
process tree), so kernels get no token. The gateway cannot call the server; the server keeps a
websocket open to `/api/accel/secrets/requests` (token-authenticated like every gateway API):
the gateway pushes `{id, kernel_id, name}` and waits for `{id, value}` or `{id, error, message}`.
No value is logged, stored or sent on any kernel channel (only the kernel's own socket).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import struct
import tempfile
import uuid

import psutil
from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketClosedError

from .handlers import AccelWebsocketHandler

SOCKET_ENV = "ACCEL_SECRETS_SOCKET"
NOT_MINE = "not_my_kernel"  # a server's answer for a kernel another server started
MAX_REQUEST_BYTES = 4096
ANSWER_TIMEOUT = 300.0  # seconds the server may take (the user answers a grant prompt)
NO_SERVER = (
    "no JupyterLab server is connected to this runtime to answer secret requests "
    "(secrets work in kernels started through jupyterlab-accel)"
)


def peer_pid(conn: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a Unix socket."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    return pid, uid


class SecretsChannel:
    """The kernels' socket, the servers' websockets, and the requests in between."""

    def __init__(self, kernel_manager, log):
        self.km, self.log = kernel_manager, log
        self.folder = tempfile.mkdtemp(prefix="accel-secrets-")  # mode 0700
        self.path = os.path.join(self.folder, "secrets.sock")
        self.servers: list = []  # connected server websockets, newest last
        self.waiting: dict[str, asyncio.Future] = {}
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        os.chmod(self.path, 0o600)
        self._sock.listen(16)
        self._sock.setblocking(False)
        self._server = None
        IOLoop.current().add_callback(self._start)

    async def _start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, sock=self._sock)

    def kernel_of(self, pid: int) -> str | None:
        """The kernel whose process tree holds `pid`."""
        try:
            chain = {pid, *(p.pid for p in psutil.Process(pid).parents())}
        except psutil.Error:
            return None
        for kid in list(self.km.list_kernel_ids()):
            if self.km.kernel_pid(kid) in chain:
                return kid
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            answer = await self._answer(reader, writer)
        except Exception as e:  # noqa: BLE001 - the kernel gets the reason, never a hang
            answer = {"error": "SecretsError", "message": f"secret request failed: {e}"}
        try:
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _answer(self, reader, writer) -> dict:
        pid, uid = peer_pid(writer.get_extra_info("socket"))
        kid = self.kernel_of(pid) if uid == os.getuid() else None
        if kid is None:
            return {"error": "SecretsError", "message": "not a kernel of this runtime"}
        line = await asyncio.wait_for(reader.readline(), 10)
        try:
            name = json.loads(line[:MAX_REQUEST_BYTES])["name"]
        except (ValueError, KeyError, TypeError):
            return {"error": "SecretsError", "message": "malformed secret request"}
        if not isinstance(name, str) or not name:
            return {"error": "SecretsError", "message": "the secret name must be a string"}
        if not self.servers:
            return {"error": "SecretsError", "message": NO_SERVER}
        answer = {"error": "SecretsError", "message": NO_SERVER}
        for server in reversed(list(self.servers)):  # newest first; the kernel's server answers
            answer = await self._ask(server, kid, name)
            if answer.get("reason") != NOT_MINE:
                break
        return answer

    async def _ask(self, server, kid: str, name: str) -> dict:
        rid = uuid.uuid4().hex
        fut = self.waiting[rid] = asyncio.get_running_loop().create_future()
        try:
            server.write_message(json.dumps({"id": rid, "kernel_id": kid, "name": name}))
            return await asyncio.wait_for(fut, ANSWER_TIMEOUT)
        except asyncio.TimeoutError:
            return {"error": "SecretsError", "message": "no answer from the server in time"}
        except WebSocketClosedError:
            return {"error": "SecretsError", "message": NO_SERVER}
        finally:
            self.waiting.pop(rid, None)

    def answered(self, message: str) -> None:
        """A server's answer: `{id, value}` or `{id, error, message}`."""
        try:
            msg = json.loads(message)
            fut = self.waiting.get(msg.pop("id"))
        except (ValueError, KeyError, TypeError, AttributeError):
            return
        if fut is not None and not fut.done():
            fut.set_result(msg)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class SecretRequestsHandler(AccelWebsocketHandler):
    """The server's end: requests pushed to it, answers read from it."""

    ws_action = "write"

    def initialize(self, channel: SecretsChannel):
        self.channel = channel

    def open(self, *args, **kwargs):
        super().open()
        self.channel.servers.append(self)

    def on_message(self, message):
        self.channel.answered(message)

    def on_close(self):
        if self in self.channel.servers:
            self.channel.servers.remove(self)


def setup_secrets(ctx) -> None:
    """The kernels' socket (its path in every kernel's environment) and the servers' websocket."""
    channel = SecretsChannel(ctx.kernel_manager, ctx.serverapp.log)
    ctx.kernel_env[SOCKET_ENV] = channel.path
    ctx.after_kernels_stopped(channel.close)
    ctx.features.append("secrets")
    ctx.handlers.append(
        (r"/api/accel/secrets/requests", SecretRequestsHandler, {"channel": channel})
    )
