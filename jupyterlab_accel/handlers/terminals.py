"""Terminals on a runtime, routed like its kernels. Paths mirror jupyter_server's own under
`/accel/runtimes/{name}/`, so JupyterLab's TerminalManager works unchanged with that base URL:

- `GET|POST /accel/runtimes/{name}/api/terminals`, `GET|DELETE .../api/terminals/{term}`:
  the runtime's `/api/terminals`;
- websocket `/accel/runtimes/{name}/terminals/websocket/{term}`: relayed to the runtime's.

Auth, authorization and Origin are checked before anything goes upstream. When the runtime leg
drops while the browser stays, the relay reconnects with back-off; terminado then replays its
recent output, and the part the browser already has is dropped (the longest overlap of what was
delivered with the start of the replay), so a link cut shows the output once.
"""

from __future__ import annotations

import asyncio
import json

from jupyter_server.auth.decorator import authorized, ws_authenticated
from tornado import web
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClosedError

from .base import NOT_SUPPORTED, AccelHandler, RuntimeWebsocketHandler

TERMINALS_OFF = "terminals are turned off on this runtime"
TAIL_CHARS = 64 * 1024  # delivered output kept to find the overlap with a replay
MAX_HELD = 1 << 20  # keystrokes held while the runtime is away


def overlap(delivered: str, replay: str) -> int:
    """Length of the longest start of `replay` that `delivered` ends with (prefix function)."""
    n = min(len(delivered), len(replay))
    if not n:
        return 0
    s = replay[:n] + "\0" + delivered[-n:]
    pi = [0] * len(s)
    for i in range(1, len(s)):
        k = pi[i - 1]
        while k and s[i] != s[k]:
            k = pi[k - 1]
        if s[i] == s[k]:
            k += 1
        pi[i] = k
    return pi[-1]


def already_delivered(tail: str, replay: str) -> int:
    """How much of a reconnect's replay the browser has: the replay starts inside what was
    delivered (overlap), or, when it reaches back further than the kept tail, holds the tail."""
    n = overlap(tail, replay)
    if n or len(replay) <= len(tail) or not tail:
        return n
    at = replay.rfind(tail)
    return at + len(tail) if at >= 0 else 0


def check_terminals(rt) -> None:
    if not rt.supports_accel:
        raise web.HTTPError(501, NOT_SUPPORTED, reason="not_supported")
    features = (rt.info or {}).get("features") or []
    if "terminals" not in features:
        raise web.HTTPError(501, TERMINALS_OFF, reason="terminals_off")


class TerminalsProxyHandler(AccelHandler):
    async def _relay(self, name: str, term: str | None, method: str, body=None):
        rt = await self.runtime(name, healthy=True)
        check_terminals(rt)
        path = "/api/terminals" + (f"/{term}" if term else "")
        await self.relay_json(rt, path, method, body=body)

    @web.authenticated
    @authorized
    async def get(self, name, term=None):
        await self._relay(name, term, "GET")

    @web.authenticated
    @authorized
    async def post(self, name, term=None):
        if term:
            raise web.HTTPError(405)
        body = self.json_body() or {}
        if not isinstance(body, dict):
            raise web.HTTPError(400, "body must be a JSON object")
        # cwd is the runtime's business (its workspace); only a name may be asked for.
        await self._relay(name, None, "POST", body={k: body[k] for k in ("name",) if k in body})

    @web.authenticated
    @authorized
    async def delete(self, name, term=None):
        if not term:
            raise web.HTTPError(405)
        await self._relay(name, term, "DELETE")


class TerminalRelayHandler(RuntimeWebsocketHandler):
    reconnect_timeout = 600.0

    @ws_authenticated
    async def get(self, name, term):
        rt = await self.authorized_runtime(name, "execute")
        if not rt.healthy:
            raise web.HTTPError(503, f"runtime {name!r} is unavailable: {rt.error}")
        check_terminals(rt)
        self.rt, self.term = rt, term
        self.upstream = None
        self.tail = ""
        self.held: list[str] = []
        self.closed = False
        # tornado checks the Origin in this call, before open() connects upstream.
        await super().get(name, term)

    async def _connect(self):
        req = self.rt.request(f"/terminals/websocket/{self.term}", ws=True, timeout=30)
        return await self.rt.websocket_connect(req)  # TCP or the embedded runtime's socket

    async def open(self, name, term):
        super().open()
        self.set_nodelay(True)
        try:
            self.upstream = await self._connect()
        except (HTTPClientError, OSError) as e:
            self.close(1011, f"runtime terminal unavailable: {e}"[:120])
            return
        self.pump = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        replay_due = False
        while not self.closed:
            msg = await self.upstream.read_message() if self.upstream else None
            if msg is None:
                if self.closed or not await self._reconnect():
                    break
                replay_due = True
                continue
            if isinstance(msg, bytes):
                msg = msg.decode("utf-8", "replace")
            try:
                kind, *rest = json.loads(msg)
            except (ValueError, TypeError):
                continue
            if kind == "setup" and replay_due:
                continue  # the browser's terminal is set up already
            if kind == "stdout" and rest and isinstance(rest[0], str):
                text = rest[0]
                if replay_due:
                    text = text[already_delivered(self.tail, text) :]
                    replay_due = False
                    if not text:
                        continue
                self.tail = (self.tail + text)[-TAIL_CHARS:]
                msg = json.dumps(["stdout", text])
            elif kind == "disconnect":
                replay_due = False
            try:
                await self.write_message(msg)
            except WebSocketClosedError:
                break
        if not self.closed:
            self.close()

    async def _reconnect(self) -> bool:
        """The runtime leg dropped: try again with back-off while the browser stays."""
        self.upstream = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_timeout
        delay = 0.25
        while not self.closed and loop.time() < deadline:
            await asyncio.sleep(delay)
            try:
                self.upstream = await self._connect()
            except HTTPClientError as e:
                if e.code == 404:  # the terminal is gone (runtime restarted, culled)
                    await self._send_quietly(json.dumps(["disconnect", 1]))
                    return False
            except OSError:
                pass
            if self.upstream is not None:
                for keys in self.held:
                    await self.upstream.write_message(keys)
                self.held.clear()
                return True
            delay = min(delay * 2, 5.0)
        return False

    async def _send_quietly(self, msg: str) -> None:
        try:
            await self.write_message(msg)
        except WebSocketClosedError:
            pass

    async def on_message(self, message):
        if self.upstream is None:
            if sum(map(len, self.held)) < MAX_HELD:
                self.held.append(message)
            return
        try:
            await self.upstream.write_message(message)
        except WebSocketClosedError:
            self.held.append(message)

    def on_close(self):
        self.closed = True
        if self.upstream is not None:
            self.upstream.close()
