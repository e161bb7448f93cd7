"""One upstream metrics stream per runtime, fanned out to any number of watchers (tabs)."""

from __future__ import annotations

import asyncio
import json
import sys

from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClientConnection

from .runtime import Runtime


class _Stream:
    def __init__(self, hub: MetricsHub, rt: Runtime):
        self.hub, self.rt = hub, rt
        self.watchers: set = set()
        self.conn: WebSocketClientConnection | None = None
        self.task: asyncio.Task | None = None
        self.last: str | None = None

    def send_all(self, text: str) -> None:
        for w in list(self.watchers):
            try:
                w.write_message(text)
            except Exception:  # noqa: BLE001 - a closed tab just leaves
                self.watchers.discard(w)

    async def run(self) -> None:
        delay = 1.0
        while self.watchers:
            try:
                req = self.rt.request("/api/accel/metrics/stream", ws=True, timeout=10)
                conn = self.conn = await self.rt.websocket_connect(
                    req, max_message_size=sys.maxsize
                )
                assert conn.protocol is not None  # tornado sets it once connected
                conn.protocol.set_nodelay(True)
                self.hub.upstream_opened += 1
                delay = 1.0
                while self.watchers:
                    msg = await conn.read_message()
                    if msg is None:
                        break
                    self.last = msg if isinstance(msg, str) else msg.decode()
                    self.send_all(self.last)
            except asyncio.CancelledError:
                break
            except HTTPClientError as e:
                self.send_all(json.dumps({"error": f"metrics stream refused ({e.code})"}))
            except Exception as e:  # noqa: BLE001 - reported to watchers, retried
                self.send_all(json.dumps({"error": f"runtime unreachable: {e}"}))
            finally:
                if self.conn is not None:
                    self.conn.close()
                    self.conn = None
            if self.watchers:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)


class MetricsHub:
    """Per runtime: the first watcher opens the upstream stream, the last one closes it."""

    def __init__(self):
        self._streams: dict[str, _Stream] = {}
        self.upstream_opened = 0  # total upstream connections opened (for tests and logs)

    def subscribe(self, rt: Runtime, watcher) -> None:
        stream = self._streams.get(rt.name)
        if stream is None or stream.rt is not rt:
            stream = self._streams[rt.name] = _Stream(self, rt)
        stream.watchers.add(watcher)
        if stream.last:
            watcher.write_message(stream.last)
        if stream.task is None or stream.task.done():
            stream.task = asyncio.ensure_future(stream.run())

    def unsubscribe(self, rt_name: str, watcher) -> None:
        stream = self._streams.get(rt_name)
        if stream is None:
            return
        stream.watchers.discard(watcher)
        if not stream.watchers:
            if stream.task is not None:
                stream.task.cancel()
            del self._streams[rt_name]

    def upstreams(self) -> int:
        """Upstream streams open now."""
        return sum(1 for s in self._streams.values() if s.conn is not None)

    def close(self) -> None:
        for name in list(self._streams):
            s = self._streams.pop(name)
            s.watchers.clear()
            if s.task is not None:
                s.task.cancel()
