"""The output path's copy-free pieces (issue 16, "Cheaper hops"): header-only msg_id reading,
v1 frames written as pieces, the journal keeping large frames as views, and the relay reading
large upstream frames into reused buffers. No kernels; real tornado sockets where it matters."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import socket
import struct

import pytest
from accel_gateway.activity import activity_listener
from accel_gateway.journal import ZERO_COPY_BYTES, KernelJournal, keep_part, load_part
from accel_gateway.journal_ws import legacy_message, v1_pieces, ws_frame, ws_header
from accel_gateway.journal_ws import write_frame as gateway_write_frame
from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1
from tornado import httpserver, web, websocket
from tornado.netutil import bind_sockets

from jupyterlab_accel import relay
from jupyterlab_accel.reconnect import SeenIds, frame_msg_id

V1 = "v1.kernel.websocket.jupyter.org"
pack = lambda o: json.dumps(o).encode()  # noqa: E731
unpack = json.loads


def parts(msg_id: str, text: str = "x", msg_type: str = "stream", buffers=()) -> list:
    header = {"msg_id": msg_id, "msg_type": msg_type, "date": "2026-12-01T00:00:00Z"}
    parent = {"msg_id": "req", "msg_type": "execute_request"}
    return [pack(header), pack(parent), pack({}), pack({"name": "stdout", "text": text}), *buffers]


# -- msg_id from the header only -------------------------------------------------------------
def test_frame_msg_id_reads_v1_header_in_any_bytes_like():
    big = parts("m1", "y" * 2_000_000)
    frame = serialize_msg_to_ws_v1(big, "iopub")
    assert frame_msg_id(frame) == "m1"
    assert frame_msg_id(bytearray(frame)) == "m1"
    assert frame_msg_id(memoryview(frame)) == "m1"
    assert frame_msg_id(memoryview(bytearray(frame))[: len(frame)]) == "m1"
    # the same message as a legacy JSON text frame, as jupyter_server writes it
    legacy = json.dumps(legacy_message(big, "iopub", unpack), default=str)
    assert frame_msg_id(legacy) == "m1"


def test_frame_msg_id_truncated_or_garbage_gives_none_never_raises():
    frame = serialize_msg_to_ws_v1(parts("m2"), "iopub")
    header_end = int.from_bytes(frame[24:32], "little")
    for n in range(len(frame)):
        got = frame_msg_id(frame[:n])
        assert got == ("m2" if n >= header_end else None), n
    rng = random.Random(16)
    for _ in range(2000):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
        assert frame_msg_id(junk) is None or isinstance(frame_msg_id(junk), str)
    offsets = struct.pack("<4Q", 3, 32, 32, 2**63)  # header end far past the frame
    assert frame_msg_id(offsets + b"{}") is None
    assert frame_msg_id(struct.pack("<4Q", 2**64 - 1, 0, 0, 0)) is None
    for header in (b"[1, 2]", b'{"msg_id": 5}', b'{"msg_id": ["a"]}', b"\xff\xfe", b"{" * 5000):
        f = serialize_msg_to_ws_v1([header, b"{}", b"{}", b"{}"], "iopub")
        assert frame_msg_id(f) is None
    for text in (
        "",
        "{",
        '{"header": {"msg_id": 7}}',
        "x" * 10_000,
        '"msg_id": "late"'.rjust(5000),
    ):
        assert frame_msg_id(text) is None
    assert frame_msg_id(None) is None and frame_msg_id(12) is None
    assert frame_msg_id(memoryview(b"\0" * 64).cast("I")) is None  # not a byte view


def test_seen_ids_dedupes_bytearray_and_memoryview_frames():
    seen = SeenIds(size=10)
    frames = [serialize_msg_to_ws_v1(parts(f"m{i}"), "iopub") for i in range(4)]
    assert not any(seen.is_repeat(bytearray(f)) for f in frames[:3])
    seen.deduping = True
    assert seen.is_repeat(memoryview(frames[1])) and seen.is_repeat(frames[2])
    assert not seen.is_repeat(memoryview(bytearray(frames[3]))) and not seen.deduping


# -- v1 frames as pieces; the journal's views ------------------------------------------------
@pytest.mark.parametrize("size", [0, 100, 20_000, ZERO_COPY_BYTES, 1_000_000])
def test_v1_pieces_join_to_stock_serialization(size):
    msg = parts("m3", "z" * size, buffers=[b"\1\2", bytes(size)])
    for channel in ("iopub", "shell", "control", "stdin"):
        want = serialize_msg_to_ws_v1(msg, channel)
        assert b"".join(v1_pieces(msg, channel)) == want
        views = [keep_part(p, i) for i, p in enumerate(msg)]
        assert b"".join(v1_pieces(views, channel)) == want


def test_keep_part_views_only_large_content_and_buffers():
    big, small = b"c" * ZERO_COPY_BYTES, b"c" * (ZERO_COPY_BYTES - 1)
    assert keep_part(big, 3) is big  # bytes stay as they are
    for i in range(3):
        kept = keep_part(bytearray(big), i)
        assert type(kept) is bytes and kept == big  # headers always bytes
    assert type(keep_part(bytearray(small), 3)) is bytes
    view = keep_part(bytearray(big), 3)
    assert type(view) is memoryview and view == big
    assert type(keep_part(memoryview(big).cast("I"), 4)) is bytes  # odd formats: copied


def test_journal_with_views_replays_and_reports_like_bytes():
    text = "w" * (2 * ZERO_COPY_BYTES)
    as_bytes = parts("m4", text, buffers=[os.urandom(ZERO_COPY_BYTES)])
    j = KernelJournal("k", max_bytes=10**8, max_executions=10, pack=pack, unpack=unpack)
    entry = j.record([bytearray(p) for p in as_bytes])  # like zmq.Frames: any buffer
    assert [type(p) for p in entry.parts] == [bytes, bytes, bytes, memoryview, memoryview]
    assert entry.size == sum(len(p) for p in as_bytes)
    assert load_part(unpack, entry.parts[3])["text"] == text
    for proto in (V1, None):
        assert_same_frame(ws_frame(entry.parts, "iopub", proto, unpack), as_bytes, proto)
    body = j.to_json(0)["messages"][0]
    assert body["content"]["text"] == text
    assert base64.b64decode(body["buffers"][0]) == as_bytes[4]


def assert_same_frame(got, as_bytes, proto):
    want = ws_frame(as_bytes, "iopub", proto, unpack)
    frame, binary = got
    if isinstance(frame, list):
        frame = b"".join(frame)
    want_frame = b"".join(want[0]) if isinstance(want[0], list) else want[0]
    assert (frame, binary) == (want_frame, want[1])


def test_activity_and_executions_read_status_from_views():
    class Kernel:
        execution_state = "starting"
        last_activity = None

        class session:
            unpack = staticmethod(unpack)

    class Manager:
        last_kernel_activity = None

        @staticmethod
        def track_message_type(t):
            return t not in ("comm_open", "comm_msg")

    j = KernelJournal("k", max_bytes=10**8, max_executions=10, pack=pack, unpack=unpack)
    kernel = Kernel()
    j.listeners.append(activity_listener(Manager, kernel))
    status = parts("s1", msg_type="status")
    status[3] = pack({"execution_state": "busy", "pad": "p" * ZERO_COPY_BYTES})
    entry = j.record([bytearray(p) for p in status])
    assert type(entry.parts[3]) is memoryview
    assert kernel.execution_state == "busy" and j.executions["req"].status == "busy"


# -- real sockets: gateway frames written as pieces; the relay's upstream reads ---------------
SIZES = [0, 1, 125, 126, 65_535, 65_536, 70_000, 1_000_003, 3_000_000]


def payload(i: int, n: int) -> bytes:
    return random.Random(i).randbytes(n)


class Source(websocket.WebSocketHandler):
    """Sends SIZES frames (binary, then text) the copy-free way; deflated where negotiated."""

    def get_compression_options(self):
        return {} if self.application.settings["compress"] else None

    async def open(self):
        for i, n in enumerate(SIZES):
            data = payload(i, n)
            pieces = [data[: n // 3], memoryview(data)[n // 3 : n // 2], data[n // 2 :]]
            await gateway_write_frame(self, pieces, True)
        for i, n in enumerate(SIZES):  # text: as the gateway writes legacy JSON, and stock
            if i % 2:
                await gateway_write_frame(self, [("é" * n)[:n].encode()], False)
            else:
                self.write_message("t" * n)
        await self.write_message(b"end", binary=True)


class Relay(websocket.WebSocketHandler):
    """The relay's pump in miniature: upstream frames -> this client, buffers recycled."""

    async def open(self):
        port, compress = self.application.settings["port"], self.application.settings["compress"]
        up = await websocket.websocket_connect(
            f"ws://127.0.0.1:{port}/src",
            max_message_size=2**32,
            compression_options={} if compress else None,
        )
        relay.read_large_frames_into_buffers(up)
        while True:
            msg = await up.read_message()
            if msg is None:
                break
            if msg == b"end":  # before the client hears it
                self.application.settings["spare"].append(len(up.protocol._spare or []))
            await relay.write_frame(self, msg)
            relay.recycle_frame(up, msg)
        up.close()


@pytest.mark.parametrize("compress", [False, True])
def test_pieces_and_upstream_buffers_end_to_end(compress):
    async def main():
        [sock] = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        port = sock.getsockname()[1]
        settings = {
            "port": port,
            "spare": [],
            "compress": compress,
            "websocket_max_message_size": 2**32,
        }
        app = web.Application([("/src", Source), ("/relay", Relay)], **settings)
        server = httpserver.HTTPServer(app)
        server.add_sockets([sock])
        try:
            for path in ("/src", "/relay"):
                conn = await websocket.websocket_connect(
                    f"ws://127.0.0.1:{port}{path}", max_message_size=2**32
                )
                got = []
                while (m := await conn.read_message()) != b"end":
                    got.append(m)
                conn.close()
                want = [payload(i, n) for i, n in enumerate(SIZES)]
                want += ["t" * n if not i % 2 else ("é" * n)[:n] for i, n in enumerate(SIZES)]
                assert [type(m) for m in got] == [type(w) for w in want], path
                assert got == want, path
            spare = settings["spare"][0]
            assert 0 < spare <= relay.SPARE_BUFFERS if not compress else spare == 0
        finally:
            server.stop()

    asyncio.run(main())


def test_upstream_masked_frames_fall_back_to_tornado():
    """No server masks its frames, but tornado accepts it; so does the relay's reader."""

    async def main():
        body = os.urandom(200_000)
        mask = b"\x01\x02\x03\x04"
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(body))

        async def serve(reader, writer):
            request = await reader.readuntil(b"\r\n\r\n")
            key = [
                line.split(b":", 1)[1].strip()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key")
            ][0]
            accept = base64.b64encode(
                hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
            )
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            await writer.drain()
            await asyncio.sleep(0.1)  # the client switches protocols first
            unmasked = struct.pack("!BBQ", 0x82, 127, len(body)) + body
            writer.write(unmasked + struct.pack("!BBQ", 0x82, 0x80 | 127, len(body)))
            writer.write(mask + masked + struct.pack("!BB", 0x82, 4) + b"tail")
            await writer.drain()
            await asyncio.sleep(1)
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            up = await websocket.websocket_connect(
                f"ws://127.0.0.1:{port}/", max_message_size=2**32
            )
            relay.read_large_frames_into_buffers(up)
            assert isinstance(up.protocol, relay._UpstreamProtocol)
            first, second, tail = [await up.read_message() for _ in range(3)]
            assert (bytes(first), bytes(second), tail) == (body, body, b"tail")
            up.close()
        finally:
            server.close()

    asyncio.run(main())


def test_ws_header_lengths():
    for n, head in ((0, b"\x82\x00"), (125, b"\x82\x7d"), (126, b"\x82\x7e\x00\x7e")):
        assert ws_header(n, True) == head
    assert ws_header(65_536, False) == b"\x81\x7f" + (65_536).to_bytes(8, "big")


def test_journal_fed_connection_unsubscribes_its_own_iopub():
    """After the nudge a journal-fed websocket's iopub socket stops receiving: the journal
    has its own subscription, so every output would otherwise cross ZMQ twice."""
    import time

    import zmq
    from accel_gateway.journal_ws import JournalReplayMixin

    ctx = zmq.Context.instance()
    pub, sub = ctx.socket(zmq.PUB), ctx.socket(zmq.SUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    sub.connect(f"tcp://127.0.0.1:{port}")
    sub.setsockopt(zmq.SUBSCRIBE, b"")

    class Stream:
        socket = sub

        @staticmethod
        def closed():
            return False

    def received(payload: bytes) -> bool:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            pub.send(payload)
            if sub.poll(50):
                while sub.poll(0):
                    sub.recv()
                return True
        return False

    conn = JournalReplayMixin()
    conn.channels = {"iopub": Stream()}
    try:
        assert received(b"before")  # subscribed, as the nudge needs
        conn._mute_iopub()
        time.sleep(0.3)  # the unsubscription reaches the PUB side
        while sub.poll(0):
            sub.recv()
        pub.send(b"after")
        assert not sub.poll(300)
        conn.channels = {"iopub": None}
        conn._mute_iopub()  # nothing to mute: no error
    finally:
        pub.close(0)
        sub.close(0)


def test_execute_result_count_from_the_tail_only_where_it_is_top_level():
    from accel_gateway.journal import _UNKNOWN, tail_execution_count

    html = '<td>"execution_count": 9}</td>' * 5000  # the key inside a string: not a key
    cases = [
        ({"data": {"text/html": html}, "metadata": {}, "execution_count": 12}, 12),
        ({"data": {"text/html": html}, "metadata": {}, "execution_count": None}, None),
        ({"data": {"text/html": html}, "metadata": {}, "execution_count": -3}, -3),
        ({"data": {"application/json": {"execution_count": 5}}}, _UNKNOWN),  # nested only
        ({"execution_count": 4, "data": {"text/html": html}}, _UNKNOWN),  # another order
        ({"data": {"text/html": html}, "execution_count": 2.0}, _UNKNOWN),
        ({"data": {"text/html": html}, "execution_count": 10**20}, _UNKNOWN),
    ]
    for content, want in cases:
        raw = json.dumps(content).encode()
        for got in (tail_execution_count(raw), tail_execution_count(memoryview(bytearray(raw)))):
            assert got is want if want is None or want is _UNKNOWN else got == want
    assert tail_execution_count(b"") is _UNKNOWN
    assert tail_execution_count(b'x\\"execution_count\\": 3}') is _UNKNOWN

    # in the journal: big results read from the tail, others parsed, same counts either way
    j = KernelJournal("k", max_bytes=10**8, max_executions=10, pack=pack, unpack=unpack)
    expected = None
    for n, content in enumerate(c for c, _ in cases):
        msg = parts(f"r{n}", msg_type="execute_result")
        msg[3] = pack(content)
        j.record([bytearray(p) for p in msg])
        expected = content.get("execution_count", expected)  # as a full parse reads it
        assert j.executions["req"].execution_count == expected


def test_wait_subscribed_waits_for_a_message_after_the_call():
    """After a restart on the same ports the journal's event is still set from the old
    kernel: waiting must see a new message, or a client connecting right after the restart
    misses output until the socket has reconnected."""
    from accel_gateway.journal import OutputJournal

    class Shell:
        def close(self):
            pass

    async def main():
        store = OutputJournal(subscribe_timeout=5)
        j = store.journals["k"] = KernelJournal("k", 10**6, 10, pack, unpack)
        j.subscribed.set()  # from before the restart
        sent = []
        loop = asyncio.get_running_loop()

        class Kernel:
            class session:
                @staticmethod
                def send(_shell, msg_type):
                    sent.append(msg_type)
                    if len(sent) == 2:  # the socket has reconnected: the 2nd nudge is heard
                        loop.call_later(0.05, j.record, parts("st", msg_type="status"))

            @staticmethod
            def connect_shell():
                return Shell()

        await store.wait_subscribed("k", Kernel())
        assert sent == ["kernel_info_request"] * 2 and j.subscribed.is_set()

    asyncio.run(main())


@pytest.mark.parametrize("send_pieces", ["gateway", "relay"])
def test_send_pieces_partial_sends_keep_order(send_pieces):
    """One sendmsg where the socket takes it all; what it does not take (a small send buffer,
    a write already queued) goes through tornado's queue, in order."""
    from accel_gateway import journal_ws
    from tornado.iostream import IOStream

    send = journal_ws.send_pieces if send_pieces == "gateway" else relay.send_pieces

    async def main():
        a, b = socket.socketpair()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        a.setblocking(False)
        stream = IOStream(a)
        rng = random.Random(7)
        pieces = [rng.randbytes(n) for n in (3, 0, 70_000, 10, 500_000, 1)]
        want = b"".join(pieces) * 3
        done = [
            send(stream, [p if i % 2 else memoryview(p) for i, p in enumerate(pieces)])
            for _ in range(3)  # the 2nd and 3rd find the 1st still queued
        ]
        got = bytearray()
        b.setblocking(False)
        loop = asyncio.get_running_loop()
        while len(got) < len(want):
            got += await loop.sock_recv(b, 65536)
        await asyncio.gather(*done)
        assert bytes(got) == want
        small = send(stream, [b"x", b"yz"])  # nothing queued: sent at once, done at once
        assert small.done()
        assert await loop.sock_recv(b, 10) == b"xyz"
        stream.close()
        b.close()
        with pytest.raises(Exception) as e:
            send(stream, [b"after close"])
        assert type(e.value).__name__ == "StreamClosedError"

    asyncio.run(main())
