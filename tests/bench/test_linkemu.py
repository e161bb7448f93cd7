"""The link emulator: delay and rate within 10% of the setting, memory bounded, stops by itself."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest
import requests

from bench.linkemu import PROFILES, LinkEmulator, LinkProcess


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _Source(socketserver.BaseRequestHandler):
    """Sends N bytes once asked: the client writes the count as text."""

    def handle(self):
        n = int(self.request.recv(64))
        block = b"x" * 65536
        while n > 0:
            self.request.sendall(block[: min(n, len(block))])
            n -= len(block)


class _Sink(socketserver.BaseRequestHandler):
    """Reads nothing until told: lets the link fill up."""

    release = threading.Event()

    def handle(self):
        self.release.wait(20)
        while self.request.recv(65536):
            pass


@pytest.fixture
def server():
    started = []

    def start(handler):
        srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        return srv.server_address[1]

    yield start
    for srv in started:
        srv.shutdown()
        srv.server_close()


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def test_round_trip_is_the_set_delay(server):
    port = server(_Echo)
    with LinkEmulator(port, delay=0.025) as link:  # 50 ms RTT
        with _connect(link.port) as s:
            s.sendall(b"warm")
            s.recv(16)
            rtts = []
            for _ in range(5):
                t0 = time.perf_counter()
                s.sendall(b"ping")
                assert s.recv(16) == b"ping"
                rtts.append(time.perf_counter() - t0)
        rtt = sorted(rtts)[2]
        assert 0.050 <= rtt <= 0.055, rtts  # never faster than the link; within 10% slower
        st = link.stats()
        assert st["connections"] == 1 and st["exchanges"] == 6, st


def test_new_connection_pays_the_handshake(server):
    port = server(_Echo)
    with LinkEmulator(port, delay=0.025) as link:
        t0 = time.perf_counter()
        with _connect(link.port) as s:
            s.sendall(b"ping")
            assert s.recv(16) == b"ping"
        first = time.perf_counter() - t0
        assert 0.100 <= first <= 0.110, first  # SYN/SYN-ACK + request/response: 2 RTTs


def test_rate_is_the_set_cap(server):
    port = server(_Source)
    rate = 20e6 / 8  # 20 Mbit/s
    size = 3_000_000
    with LinkEmulator(port, delay=0.005, rate=rate) as link:
        with _connect(link.port) as s:
            s.sendall(str(size).encode())
            got = len(s.recv(65536))
            t_first = time.perf_counter()
            while got < size:
                chunk = s.recv(1 << 20)
                assert chunk
                got += len(chunk)
            dt = time.perf_counter() - t_first
    measured = (size - 65536) / dt
    assert 0.9 * rate <= measured <= 1.1 * rate, measured * 8 / 1e6


def test_in_flight_bytes_are_bounded(server):
    _Sink.release.clear()
    port = server(_Sink)
    rate = 10e6 / 8
    with LinkEmulator(port, delay=0.010, rate=rate) as link:
        with _connect(link.port) as s:
            s.settimeout(0.2)
            sent, deadline = 0, time.monotonic() + 3
            block = b"z" * 65536
            while time.monotonic() < deadline:  # offer far more than the link can hold
                try:
                    sent += s.send(block)
                except TimeoutError:
                    continue
            st = link.stats()
            _Sink.release.set()
        assert st["in_flight_max"] <= st["bound"] + 65536, st
        # What the link took from the sender: its bound plus what the cap let through in 3 s;
        # without back-pressure it would read gigabytes from loopback in that time.
        assert st["up_bytes"] <= st["bound"] + 3.5 * rate + 2 * 65536, st
        assert sent <= st["up_bytes"] + (32 << 20), (sent, st)  # the sender was held back


def test_profiles_are_the_documented_ones():
    assert {k: (p.rtt, p.rate * 8) for k, p in PROFILES.items()} == {
        "lan": (0.001, 1e9),
        "region": (0.020, 200e6),
        "far": (0.080, 50e6),
    }
    with pytest.raises(ValueError, match="unknown link profile 'moon'"):
        LinkEmulator(1, profile="moon")


def test_http_requests_counted_on_a_kept_alive_connection(tmp_path):
    from tests.support.procs import start_gateway

    gw = start_gateway(tmp_path / "gw")
    try:
        with LinkProcess(gw.port, profile="region") as link:
            with requests.Session() as http:
                http.headers.update(gw.headers)
                link.reset()
                t0 = time.perf_counter()
                for _ in range(3):
                    assert http.get(link.url + "/api/kernelspecs", timeout=10).status_code == 200
                dt = time.perf_counter() - t0
            st = link.stats()
        assert st["connections"] == 1 and st["exchanges"] == 3, st
        assert 4 * 0.020 <= dt < 4 * 0.020 + 1.0, dt  # handshake + 3 requests
    finally:
        gw.stop()


def test_stops_by_itself():
    # Thread form: close() ends the loop thread and frees the port.
    link = LinkEmulator(9, delay=0.001)
    port, thread = link.port, link._thread
    link.close()
    assert not thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    # Process form: the child exits when its parent's end of the control pipe goes away.
    proc = LinkProcess(9, delay=0.001)
    proc.proc.stdin.close()  # as when the parent dies without a word
    assert proc.proc.wait(10) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proc.port), timeout=1).close()
    proc.close()
