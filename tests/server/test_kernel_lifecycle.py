"""Kernel routing through the real server to real gateways: a deliberate end is not a lost
link, refusals and unknown names keep their status and reason, client-chosen kernel ids are
kept, and a refused websocket handshake costs the runtime nothing."""

from __future__ import annotations

import time
import uuid

import psutil
import pytest
import requests
import websocket

from tests.server.conftest import server_with, start_session
from tests.support.kernel_ws import KernelClient
from tests.support.procs import start_gateway

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lifecycle")
    a = start_gateway(tmp / "a")
    full = start_gateway(tmp / "full", "--KernelLimits.max_kernels=1")
    server = server_with(
        tmp / "server",
        [
            {"name": "a", "url": a.url, "token": a.token},
            {"name": "full", "url": full.url, "token": full.token},
        ],
    )
    yield {"a": a, "full": full, "server": server}
    server.stop()
    full.stop()
    a.stop()


def read_for(kc: KernelClient, seconds: float) -> tuple[list[dict], bool]:
    """Every message within `seconds`, and whether the server closed the socket."""
    got, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        kc.ws.settimeout(max(0.1, min(1.0, deadline - time.monotonic())))
        try:
            got.append(kc.recv())
        except websocket.WebSocketTimeoutException:
            continue
        except (websocket.WebSocketConnectionClosedException, OSError):
            return got, True
    return got, False


def kinds(messages: list[dict]) -> list[tuple[str, str | None]]:
    return [(m["header"]["msg_type"], m["content"].get("execution_state")) for m in messages]


@pytest.mark.parametrize("how", ["shutdown", "change"])
@pytest.mark.parametrize("protocol", ["json", "v1"])
def test_second_client_sees_stock_messages_when_the_kernel_ends(env, how, protocol):
    """What stock jupyter_server shows a second client of a local kernel (measured:
    status busy, shutdown_reply, status idle, socket left open), and nothing of ours."""
    server = env["server"]
    s = start_session(server, "accel--a--python3", f"{how}-{protocol}.ipynb")
    kid = s["kernel"]["id"]
    with KernelClient(server.url, kid, server.token, protocol=protocol) as other:
        assert other.eval("1") == "1"
        if how == "shutdown":
            assert server.api("DELETE", f"/api/kernels/{kid}").status_code == 204
        else:
            r = server.api(
                "PATCH",
                f"/api/sessions/{s['id']}",
                json={"kernel": {"name": "accel--a--python3"}},
            )
            assert r.status_code == 200 and r.json()["kernel"]["id"] != kid, r.text
        messages, closed = read_for(other, 4)
    seen = kinds(messages)
    assert ("shutdown_reply", None) in seen, seen
    assert ("status", "idle") in seen[seen.index(("shutdown_reply", None)) :], seen
    assert not [m for m in messages if m["header"]["msg_type"] == "accel_notice"], seen
    assert ("status", "dead") not in seen
    assert not closed, "stock leaves the socket of a shut-down kernel open"
    assert "lost its link" not in server.logtext()
    if how == "change":
        server.api("DELETE", f"/api/sessions/{s['id']}")


def test_unknown_runtime_or_spec_is_404_with_a_message(env):
    server = env["server"]
    for name, reason in (
        ("accel--nope--python3", "no_such_runtime"),
        ("accel--a--nospec", "no_such_kernelspec"),
    ):
        for method, path, body in (
            ("POST", "/api/kernels", {"name": name}),
            (
                "POST",
                "/api/sessions",
                {"path": "u.ipynb", "type": "notebook", "kernel": {"name": name}},
            ),
        ):
            r = server.api(method, path, json=body)
            assert r.status_code == 404, (path, r.text)
            assert r.json()["reason"] == reason and name.split("--")[1] in r.json()["message"]
    s = start_session(server, "accel--a--python3", "unknown-change.ipynb")
    r = server.api(
        "PATCH", f"/api/sessions/{s['id']}", json={"kernel": {"name": "accel--nope--python3"}}
    )
    assert r.status_code == 404 and r.json()["reason"] == "no_such_runtime", r.text
    assert server.api("GET", f"/api/sessions/{s['id']}").json()["kernel"]["id"] == s["kernel"]["id"]
    server.api("DELETE", f"/api/sessions/{s['id']}")


def test_refusal_reason_reaches_the_client_as_fields(env):
    """The gateway's 503 {message, reason} arrives as the same fields, once, from every
    kernel-starting call; the session keeps its old kernel when a change is refused."""
    server, full = env["server"], env["full"]
    first = start_session(server, "accel--full--python3", "holds-the-slot.ipynb")
    try:
        calls = [
            ("POST", "/api/kernels", {"name": "accel--full--python3"}),
            (
                "POST",
                "/api/sessions",
                {
                    "path": "refused.ipynb",
                    "type": "notebook",
                    "kernel": {"name": "accel--full--python3"},
                },
            ),
        ]
        for method, path, body in calls:
            r = server.api(method, path, json=body)
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["reason"] == "max_kernels", body
            assert body["message"].startswith("This runtime allows 1 kernel"), body
        s = start_session(server, "accel--a--python3", "switch-refused.ipynb")
        r = server.api(
            "PATCH", f"/api/sessions/{s['id']}", json={"kernel": {"name": "accel--full--python3"}}
        )
        assert r.status_code == 503 and r.json()["reason"] == "max_kernels", r.text
        after = server.api("GET", f"/api/sessions/{s['id']}").json()
        assert after["kernel"]["id"] == s["kernel"]["id"]
        server.api("DELETE", f"/api/sessions/{s['id']}")
    finally:
        server.api("DELETE", f"/api/sessions/{first['id']}")
    assert len(full.api("GET", "/api/kernels").json()) == 0


def test_client_supplied_kernel_id_is_kept(env):
    server, a = env["server"], env["a"]
    kid = str(uuid.uuid4())
    r = server.api("POST", "/api/kernels", json={"name": "accel--a--python3", "kernel_id": kid})
    assert r.status_code == 201 and r.json()["id"] == kid, r.text
    try:
        assert kid in [k["id"] for k in a.api("GET", "/api/kernels").json()]
        with KernelClient(server.url, kid, server.token) as kc:
            assert kc.eval("3*3") == "9"
        again = server.api(
            "POST", "/api/kernels", json={"name": "accel--a--python3", "kernel_id": kid}
        )
        assert again.status_code == 201 and again.json()["id"] == kid  # the same kernel
        assert len([k for k in a.api("GET", "/api/kernels").json() if k["id"] == kid]) == 1
    finally:
        server.api("DELETE", f"/api/kernels/{kid}")
    bad = server.api(
        "POST", "/api/kernels", json={"name": "accel--a--python3", "kernel_id": "../x"}
    )
    assert bad.status_code == 400 and "kernel_id" in bad.json()["message"]


def _gateway_connections(gw) -> int:
    conns = psutil.Process(gw.pid).net_connections(kind="tcp")
    return len([c for c in conns if c.laddr.port == gw.port and c.status == "ESTABLISHED"])


def _login_cookie(server) -> str:
    """A browser's login: the password form with the token, as a person would sign in.
    (Token-authenticated requests skip the Origin check by jupyter_server's design.)"""
    s = requests.Session()
    s.get(server.url + "/login", timeout=30)
    r = s.post(
        server.url + "/login",
        data={"password": server.token, "_xsrf": s.cookies.get("_xsrf")},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code in (302, 303), r.text
    return "; ".join(f"{k}={v}" for k, v in s.cookies.items())


def test_bad_origin_handshakes_open_no_upstream_connection(env):
    server, a = env["server"], env["a"]
    kid = server.api("POST", "/api/kernels", json={"name": "accel--a--python3"}).json()["id"]
    try:
        cookie = _login_cookie(server)
        url = server.url.replace("http", "ws", 1) + f"/api/kernels/{kid}/channels"
        log_before = a.logtext().count("Connecting to kernel")
        before = _gateway_connections(a)
        for _ in range(100):
            with pytest.raises(websocket.WebSocketBadStatusException) as e:
                websocket.create_connection(
                    url, cookie=cookie, origin="http://evil.example", timeout=10
                )
            assert e.value.status_code == 403
        time.sleep(0.5)
        assert _gateway_connections(a) <= before + 1, "refused handshakes reached the runtime"
        assert a.logtext().count("Connecting to kernel") == log_before
        # the same login from the server's own origin is relayed
        ws = websocket.create_connection(url, cookie=cookie, origin=server.url, timeout=10)
        ws.close()
        time.sleep(0.5)
        assert a.logtext().count("Connecting to kernel") == log_before + 1
    finally:
        server.api("DELETE", f"/api/kernels/{kid}")
