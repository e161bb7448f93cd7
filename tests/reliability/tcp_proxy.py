"""A loopback TCP proxy a test can cut (close every connection, refuse new ones) and restore:
a laptop going to sleep, a network outage between the server and a runtime."""

from __future__ import annotations

import asyncio
import threading


class TcpProxy:
    """127.0.0.1:port -> 127.0.0.1:target_port, on its own event loop thread."""

    def __init__(self, target_port: int, port: int):
        self.target_port, self.port = target_port, port
        self.loop = asyncio.new_event_loop()
        self._server = None
        self._writers: set = set()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.restore()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _pipe(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _client(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}

    async def _listen(self):
        self._server = await asyncio.start_server(
            self._client, "127.0.0.1", self.port, reuse_address=True
        )

    async def _cut(self):
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()  # RST, data in flight is lost, as on a real cut
        self._writers.clear()

    def restore(self) -> None:
        if self._server is None:
            self._call(self._listen())

    def cut(self) -> None:
        self._call(self._cut())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
