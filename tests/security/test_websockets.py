"""Malformed websocket messages to kernel channels (server relay and gateway) and metrics streams:
the socket may answer with an error or close, the process never dies, and a fresh client works."""

from __future__ import annotations

import json
import struct

import pytest
import websocket

from tests.support.kernel_ws import V1, KernelClient

GARBAGE_TEXT = [
    "garbage",
    "",
    "{",
    "[]",
    "null",
    "42",
    '{"header": 5}',
    '{"header": {}, "parent_header": [], "content": "x", "channel": "shell"}',
    '{"header": {"msg_type": "execute_request"}, "channel": "nope"}',
    json.dumps(
        {
            "channel": "shell",
            "header": {
                "msg_id": "x",
                "msg_type": "kernel_info_request",
                "session": 1,
                "username": None,
            },
        }
    ),
    "\udcff".encode("utf-8", "surrogatepass").decode("latin-1"),
]
GARBAGE_BINARY = [
    b"",
    b"\x01",
    b"\x05\x00\x00\x00",  # truncated offset table
    struct.pack("<Q", 3) + struct.pack("<Q", 1 << 40) * 3,  # offsets past the end
    struct.pack("<Q", 2) + struct.pack("<QQ", 24, 16) + b"shell",  # decreasing
    struct.pack("<Q", 6) + struct.pack("<Q", 56) * 6 + b"shell",  # empty parts
    b"\xff" * 64,
    bytes(range(256)),
    b"\x00" * (12 << 20),
]  # over a 10 MiB cap


def _ws(url: str, token: str, subprotocols=None):
    return websocket.create_connection(
        url.replace("http", "ws", 1),
        header=[f"Authorization: token {token}"],
        timeout=10,
        subprotocols=subprotocols,
    )


def _blast(ws) -> None:
    """Send every malformed message; the peer may close the socket at any point."""
    try:
        for m in GARBAGE_TEXT:
            ws.send(m)
        for m in GARBAGE_BINARY:
            ws.send_binary(m)
        ws.settimeout(1)
        try:
            while True:
                ws.recv()  # errors or unrelated messages are fine; so is a close
        except (websocket.WebSocketTimeoutException, websocket.WebSocketConnectionClosedException):
            pass
    except (websocket.WebSocketConnectionClosedException, BrokenPipeError, ConnectionResetError):
        pass
    finally:
        ws.close()


def _start_kernel(proc, name: str) -> str:
    r = proc.api("POST", "/api/kernels", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.fixture(scope="module")
def kernels(sec_env):
    server, gw = sec_env["server"], sec_env["gw"]
    remote = _start_kernel(server, "accel--a--python3")  # through our relay
    direct = _start_kernel(gw, "python3")
    yield {"server": remote, "gateway": direct}
    server.api("DELETE", f"/api/kernels/{remote}")
    gw.api("DELETE", f"/api/kernels/{direct}")


@pytest.mark.parametrize("side", ["server", "gateway"])
@pytest.mark.parametrize("protocol", ["v1", "json"])
def test_kernel_channels_survive_garbage(sec_env, kernels, side, protocol):
    proc = sec_env["server"] if side == "server" else sec_env["gw"]
    kid = kernels[side]
    url = f"{proc.url}/api/kernels/{kid}/channels?session_id=fuzz"
    # another tab of the same kernel, open while the garbage flows, is not disturbed
    with KernelClient(proc.url, kid, proc.token, timeout=30, protocol=protocol) as other:
        for _ in range(2):
            _blast(_ws(url, proc.token, [V1] if protocol == "v1" else None))
        assert other.eval("1 + 1", timeout=30) == "2"
    assert proc.proc.poll() is None, f"{side} died:\n{proc.logtext()[-3000:]}"
    with KernelClient(proc.url, kid, proc.token, timeout=30, protocol=protocol) as kc:
        assert kc.eval("6 * 7", timeout=30) == "42"
    if side == "server":  # the gateway behind the relay is alive too
        assert sec_env["gw"].proc.poll() is None


@pytest.mark.parametrize("side", ["server", "gateway"])
def test_metrics_stream_survives_garbage(sec_env, side):
    proc = sec_env["server"] if side == "server" else sec_env["gw"]
    path = "/accel/runtimes/a/metrics/stream" if side == "server" else "/api/accel/metrics/stream"
    url = proc.url + path
    ws = _ws(url, proc.token)
    sample = json.loads(ws.recv())
    assert "host" in sample
    _blast(ws)
    assert proc.proc.poll() is None
    # a fresh watcher still gets samples, and a second one alongside it
    a, b = _ws(url, proc.token), _ws(url, proc.token)
    try:
        for ws in (a, b):
            assert "host" in json.loads(ws.recv())
    finally:
        a.close(), b.close()


def test_unknown_kernel_channel_is_refused(sec_env):
    for proc in (sec_env["server"], sec_env["gw"]):
        with pytest.raises(websocket.WebSocketBadStatusException) as e:
            _ws(f"{proc.url}/api/kernels/00000000-0000-0000-0000-000000000000/channels", proc.token)
        assert e.value.status_code == 404
