"""A terminal on a runtime, through the server, as JupyterLab's TerminalManager uses it (REST
under /accel/runtimes/{name}/api/terminals, websocket .../terminals/websocket/{term}): real
gateways, a real stock Kernel Gateway, a link cut through a TCP proxy."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests
import websocket

from tests.reliability.tcp_proxy import TcpProxy
from tests.server.conftest import server_with
from tests.support.procs import free_port, start_gateway, start_stock_gateway


class Term:
    def __init__(self, server, runtime: str, name: str):
        url = server.url.replace("http", "ws", 1)
        headers = [f"Authorization: token {server.token}"]
        self.ws = websocket.create_connection(
            f"{url}/accel/runtimes/{runtime}/terminals/websocket/{name}", header=headers, timeout=5
        )
        self.out = ""

    def type(self, text: str) -> None:
        self.ws.send(json.dumps(["stdin", text]))

    def read_until(self, pattern: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.out):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in terminal output: {self.out[-500:]!r}")
            try:
                kind, *rest = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            if kind == "stdout":
                self.out += rest[0]
        return self.out

    def close(self):
        self.ws.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("terminals")
    procs = []
    try:
        b = start_gateway(tmp / "b", env={"CUDA_VISIBLE_DEVICES": "7"})
        procs.append(b)
        off = start_gateway(tmp / "off", "--ServerApp.terminals_enabled=False")
        procs.append(off)
        stock = start_stock_gateway(tmp / "stock")
        procs.append(stock)
        proxy = TcpProxy(b.port, free_port())
        runtimes = [
            {"name": "b", "display_name": "B box", "url": proxy.url, "token": b.token},
            {"name": "off", "url": off.url, "token": off.token},
            {"name": "stock", "url": stock.url, "token": stock.token},
        ]
        server = server_with(tmp / "server", runtimes)
        procs.append(server)
        yield {"server": server, "b": b, "proxy": proxy}
    finally:
        for p in reversed(procs):
            p.stop()


def new_terminal(server, runtime: str):
    return server.api("POST", f"/accel/runtimes/{runtime}/api/terminals", json={})


def test_a_terminal_runs_on_its_runtime(env):
    server, b = env["server"], env["b"]
    r = new_terminal(server, "b")
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    listed = server.api("GET", "/accel/runtimes/b/api/terminals").json()
    assert name in [t["name"] for t in listed]
    term = Term(server, "b", name)
    try:
        term.type("pwd; echo GPU=$CUDA_VISIBLE_DEVICES; echo TOKEN=[$JUPYTER_TOKEN]\r")
        out = term.read_until(r"\nTOKEN=\[[^$\]]*\]\r\n")
        assert str(b.root) in out, "the shell starts in the runtime's workspace"
        assert "TOKEN=[]" in out, "the gateway's token never reaches a shell"
        assert "GPU=7" in out
    finally:
        term.close()
    assert server.api("DELETE", f"/accel/runtimes/b/api/terminals/{name}").status_code == 204
    assert name not in [t["name"] for t in b.api("GET", "/api/terminals").json()]


def test_a_link_cut_mid_command_shows_each_line_once(env):
    server, proxy = env["server"], env["proxy"]
    name = new_terminal(server, "b").json()["name"]
    term = Term(server, "b", name)
    try:
        term.type("for i in $(seq 1 40); do echo row$i; sleep 0.1; done; echo DONE\r")
        term.read_until(r"\r\nrow3\r\n")
        proxy.cut()
        time.sleep(1.5)
        proxy.restore()
        out = term.read_until(r"\r\nDONE\r\n", timeout=30)
        rows = re.findall(r"row(\d+)\r\n", out)
        assert rows == [str(i) for i in range(1, 41)], rows
    finally:
        term.close()


def test_runtimes_without_terminals_say_why(env):
    server = env["server"]
    r = new_terminal(server, "stock")
    assert r.status_code == 501 and r.json()["message"] == "not supported by this runtime"
    r = new_terminal(server, "off")
    assert r.status_code == 501
    assert r.json()["message"] == "terminals are turned off on this runtime"
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        Term(server, "off", "1")
    assert e.value.status_code == 501


def test_cross_origin_handshake_is_refused(env):
    """A page elsewhere, riding the user's login cookie, gets 403 (token clients skip the
    Origin check by jupyter_server's rule: a browser cannot add their header)."""
    server = env["server"]
    name = new_terminal(server, "b").json()["name"]
    login = requests.Session()
    login.get(f"{server.url}/?token={server.token}")
    cookie = "; ".join(f"{k}={v}" for k, v in login.cookies.items())
    assert cookie, "logging in with the token set a cookie"
    url = server.url.replace("http", "ws", 1)
    endpoint = f"{url}/accel/runtimes/b/terminals/websocket/{name}"
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        websocket.create_connection(
            endpoint, header=[f"Cookie: {cookie}"], origin="http://evil.example"
        )
    assert e.value.status_code == 403
    same = websocket.create_connection(endpoint, header=[f"Cookie: {cookie}"], origin=server.url)
    same.close()
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        websocket.create_connection(f"{url}/accel/runtimes/b/terminals/websocket/{name}")
    assert e.value.status_code in (401, 403)
