"""An idle terminal is culled by the kernels' idle rule, with the same advance warning, seen
through the server's relay as a user's screen would show it."""

from __future__ import annotations

import json
import time

import websocket

from tests.server.conftest import server_with
from tests.support.procs import start_gateway
from tests.support.waiting import wait_for


def test_idle_terminal_is_warned_then_culled(tmp_path):
    g = start_gateway(
        tmp_path / "g",
        "--KernelLimits.idle_timeout=8",
        "--KernelLimits.cull_warning=6",
        "--AccelTerminalManager.warning_interval=0.5",
        "--AccelTerminalManager.cull_interval=1",
    )
    server = server_with(tmp_path / "server", [{"name": "g", "url": g.url, "token": g.token}])
    try:
        name = server.api("POST", "/accel/runtimes/g/api/terminals", json={}).json()["name"]
        url = server.url.replace("http", "ws", 1)
        ws = websocket.create_connection(
            f"{url}/accel/runtimes/g/terminals/websocket/{name}",
            header=[f"Authorization: token {server.token}"],
            timeout=1,
        )
        seen, deadline = "", time.monotonic() + 15
        while "[jupyterlab-accel] This terminal has been idle" not in seen:
            assert time.monotonic() < deadline, f"no idle warning: {seen[-300:]!r}"
            try:
                kind, *rest = json.loads(ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            if kind == "stdout":
                seen += rest[0]
        assert "unless it is used" in seen
        wait_for(
            lambda: name not in [t["name"] for t in g.api("GET", "/api/terminals").json()],
            20,
            "the idle terminal culled",
        )
        ws.close()
    finally:
        server.stop()
        g.stop()
