"""The runtime client's keep-alive (jupyterlab_accel/keepalive.py) against a real tornado
HTTPServer on 127.0.0.1 that counts the connections it accepts."""

from __future__ import annotations

import asyncio

import pytest
from tornado import httpserver, web, websocket
from tornado.httpclient import HTTPRequest
from tornado.simple_httpclient import HTTPTimeoutError
from tornado.tcpclient import TCPClient
from tornado.testing import bind_unused_port

from jupyterlab_accel.keepalive import KeepAliveHTTPClient, websocket_connect
from jupyterlab_accel.runtime import Runtime


class Echo(web.RequestHandler):
    def get(self):
        self.write({"n": int(self.get_argument("n", "0"))})

    def post(self):
        self.write(self.request.body)

    put = post


@web.stream_request_body
class Upload(web.RequestHandler):
    def prepare(self):
        self.size = 0

    def data_received(self, chunk):
        self.size += len(chunk)

    def put(self):
        self.write({"size": self.size})


class Close(web.RequestHandler):
    def get(self):
        self.set_header("Connection", "close")
        self.write("bye")


class Slow(web.RequestHandler):
    async def get(self):
        await asyncio.sleep(2)
        self.write("late")


class Big(web.RequestHandler):
    async def get(self):
        for _ in range(8):
            self.write(b"x" * 100_000)
            await self.flush()


class EchoSocket(websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message(message, binary=isinstance(message, bytes))


class CountingServer(httpserver.HTTPServer):
    accepted = 0

    def handle_stream(self, stream, address):
        CountingServer.accepted += 1
        return super().handle_stream(stream, address)


def run(coro_fn, idle_timeout=3600.0):
    async def main():
        CountingServer.accepted = 0
        app = web.Application(
            [
                ("/echo", Echo),
                ("/upload", Upload),
                ("/close", Close),
                ("/slow", Slow),
                ("/big", Big),
                ("/ws", EchoSocket),
            ]
        )
        server = CountingServer(app, idle_connection_timeout=idle_timeout)
        sock, port = bind_unused_port()
        server.add_sockets([sock])
        client = KeepAliveHTTPClient(TCPClient(), max_clients=4)
        try:
            return await coro_fn(client, f"http://127.0.0.1:{port}")
        finally:
            client.close()
            server.stop()

    return asyncio.run(main())


def test_sequential_requests_share_one_connection():
    async def go(client, base):
        for n in range(20):
            resp = await client.fetch(HTTPRequest(f"{base}/echo?n={n}"))
            assert resp.code == 200 and resp.body == b'{"n": ' + str(n).encode() + b"}"
        return client.opened, CountingServer.accepted

    assert run(go) == (1, 1)


def test_bodies_and_streamed_bodies_go_through():
    async def go(client, base):
        echoed = await client.fetch(HTTPRequest(f"{base}/echo", "POST", body=b"hello" * 1000))
        assert echoed.body == b"hello" * 1000

        async def produce(write):
            for _ in range(10):
                await write(b"y" * 65536)

        sized = await client.fetch(
            HTTPRequest(
                f"{base}/upload",
                "PUT",
                body_producer=produce,
                headers={"Content-Length": str(10 * 65536)},
            )
        )
        assert sized.body == b'{"size": 655360}'
        chunked = await client.fetch(HTTPRequest(f"{base}/upload", "PUT", body_producer=produce))
        assert chunked.body == b'{"size": 655360}'
        return CountingServer.accepted

    assert run(go) == 1


def test_streaming_and_header_callbacks():
    async def go(client, base):
        lines, chunks = [], []

        async def slow_consumer(chunk):
            chunks.append(chunk)
            await asyncio.sleep(0)

        resp = await client.fetch(
            HTTPRequest(
                f"{base}/big",
                header_callback=lines.append,
                streaming_callback=slow_consumer,
            )
        )
        assert resp.code == 200 and resp.body == b""
        assert lines[0].startswith("HTTP/1.1 200") and lines[-1] == "\r\n"
        assert sum(map(len, chunks)) == 800_000
        again = await client.fetch(HTTPRequest(f"{base}/echo?n=1"))
        assert again.code == 200
        return CountingServer.accepted

    assert run(go) == 1


def test_connection_close_answer_is_not_reused():
    async def go(client, base):
        assert (await client.fetch(HTTPRequest(f"{base}/close"))).body == b"bye"
        assert (await client.fetch(HTTPRequest(f"{base}/echo?n=2"))).code == 200
        return client.opened

    assert run(go) == 2


def test_connection_the_server_dropped_while_idle_is_replaced():
    async def go(client, base):
        await client.fetch(HTTPRequest(f"{base}/echo?n=1"))
        await asyncio.sleep(0.6)  # the server's idle timeout closes it
        resp = await client.fetch(HTTPRequest(f"{base}/echo?n=2"))
        post = await client.fetch(HTTPRequest(f"{base}/echo", "POST", body=b"p"))
        return resp.body, post.body, client.opened

    body, post, opened = run(go, idle_timeout=0.3)
    assert body == b'{"n": 2}' and post == b"p" and opened == 2


def test_timeout_raises_and_the_connection_is_not_kept():
    async def go(client, base):
        with pytest.raises(HTTPTimeoutError):
            await client.fetch(HTTPRequest(f"{base}/slow", request_timeout=0.3))
        assert (await client.fetch(HTTPRequest(f"{base}/echo?n=3"))).code == 200
        return client.opened

    assert run(go) == 2


def test_refused_connection_raises_a_connection_error():
    async def go():
        client = KeepAliveHTTPClient(TCPClient())
        sock, port = bind_unused_port()
        sock.close()
        with pytest.raises(ConnectionError):
            await client.fetch(HTTPRequest(f"http://127.0.0.1:{port}/x", connect_timeout=2))

    asyncio.run(go())


def test_concurrent_requests_are_bounded_and_pooled():
    async def go(client, base):
        resps = await asyncio.gather(
            *(client.fetch(HTTPRequest(f"{base}/echo?n={n}")) for n in range(12))
        )
        assert [r.code for r in resps] == [200] * 12
        first = client.opened
        await asyncio.gather(*(client.fetch(HTTPRequest(f"{base}/echo?n={n}")) for n in range(4)))
        return first, client.opened

    first, after = run(go)
    assert first <= 4  # max_clients
    assert after == first  # the second wave reused them


def test_runtime_api_calls_reuse_a_connection():
    async def go(client, base):
        rt = Runtime("k", base)
        try:
            for n in range(5):
                resp = await rt.api(f"/echo?n={n}")
                assert resp.code == 200
            return rt.http.opened
        finally:
            rt.close()

    assert run(go) == 1


def test_websocket_starts_on_an_idle_kept_alive_connection():
    async def go(client, base):
        await client.fetch(HTTPRequest(f"{base}/echo?n=1"))
        ws_url = "ws" + base[4:] + "/ws"
        first = await websocket_connect(client, HTTPRequest(ws_url))
        await first.write_message("over the kept connection")
        assert await first.read_message() == "over the kept connection"
        assert (client.opened, CountingServer.accepted) == (1, 1)
        second = await websocket_connect(client, HTTPRequest(ws_url))  # none idle: a new one
        await second.write_message(b"\x00binary", binary=True)
        assert await second.read_message() == b"\x00binary"
        first.close()
        second.close()
        # the upgraded connections are the websockets': never handed out again
        assert (await client.fetch(HTTPRequest(f"{base}/echo?n=2"))).code == 200
        return client.opened, CountingServer.accepted

    assert run(go) == (3, 3)
