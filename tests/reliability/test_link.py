"""Nothing lost, faults survived, through the real server: jupyter_server + jupyterlab_accel
relaying to two real gateways, one of them behind a loopback TCP proxy the test cuts.

The issue asks for 3 minutes of output and a 60 s cut; CI runs 30 s of output (a line every
0.5 s) and a 15 s cut so the whole directory stays within a few minutes."""

from __future__ import annotations

import time

import pytest
import requests

from tests.server.conftest import server_with, start_session
from tests.support.kernel_ws import KernelClient
from tests.support.procs import free_port, start_gateway

from .output import new_session, numbers, printer, read_for, send_execute, stream_text
from .tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(150)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reliability")
    a = start_gateway(tmp / "a")
    b = start_gateway(tmp / "b")
    proxy = TcpProxy(a.port, free_port())
    server = server_with(
        tmp / "server",
        [
            {"name": "a", "url": proxy.url, "token": a.token},
            {"name": "b", "url": b.url, "token": b.token},
        ],
        extra={"AccelWebsocketConnection": {"upstream_ping_interval": 5}},
    )
    state = {"a": a, "b": b, "proxy": proxy, "server": server, "tmp": tmp}
    yield state
    server.stop()
    proxy.close()
    state["a"].stop()
    state["b"].stop()


def healthy(server, name: str) -> bool:
    r = server.api("GET", f"/accel/runtimes/{name}", timeout=10)
    return r.status_code == 200 and r.json()["healthy"]


def notices(messages: list) -> list[str]:
    return [m["content"]["kind"] for m in messages if m["header"]["msg_type"] == "accel_notice"]


def wait_for(pred, timeout: float, step: float = 0.2) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(step)
    raise AssertionError(f"not within {timeout}s")


def test_browser_closed_and_reopened_gets_every_line_once(env):
    server = env["server"]
    kid = start_session(server, "accel--a--python3", "closed.ipynb")["kernel"]["id"]
    session = new_session()
    c1 = KernelClient(server.url, kid, server.token, protocol="v1", session=session)
    msg_id = send_execute(c1, printer(16, 0.25))
    first = read_for(c1, msg_id, 1.5)
    c1.close()  # the tab is closed
    time.sleep(2)
    with KernelClient(server.url, kid, server.token, protocol="v1", session=session) as c2:
        rest = read_for(c2, msg_id, 30, until_idle=True)
    assert numbers(stream_text(first + rest)) == list(range(16))
    assert rest[-1]["content"]["execution_state"] == "idle"
    # the journal through the server extension has the whole execution too
    j = server.api("GET", f"/accel/kernels/{kid}/journal?since=0").json()
    ex = next(e for e in j["executions"] if e["msg_id"] == msg_id)
    assert ex["status"] == "idle" and ex["execution_count"] == 1
    mine = [m for m in j["messages"] if m["parent_header"].get("msg_id") == msg_id]
    assert numbers(stream_text(mine)) == list(range(16))
    assert server.api("GET", f"/accel/kernels/{kid}/journal?since=x").status_code == 400
    anon = requests.get(f"{server.url}/accel/kernels/{kid}/journal", timeout=10)
    assert anon.status_code in (401, 403)


@pytest.mark.parametrize("protocol", ["v1", "json"])
def test_link_cut_15s_every_line_once_other_runtime_unaffected(env, protocol):
    server, proxy = env["server"], env["proxy"]
    kid = start_session(server, "accel--a--python3", f"cut-{protocol}.ipynb")["kernel"]["id"]
    kid_b = start_session(server, "accel--b--python3", f"b-{protocol}.ipynb")["kernel"]["id"]
    with (
        KernelClient(server.url, kid, server.token, protocol=protocol) as c,
        KernelClient(server.url, kid_b, server.token, protocol=protocol) as cb,
    ):
        msg_id = send_execute(c, printer(60, 0.5))
        got = read_for(c, msg_id, 4)
        proxy.cut()
        t_cut = time.monotonic()
        got += read_for(c, msg_id, 5, stop_notice="runtime_lost")
        print(f"link cut: runtime_lost after {time.monotonic() - t_cut:.2f}s")
        assert "reconnecting" in notices(got) and "runtime_lost" in notices(got), notices(got)
        # the browser is told within 5 s; the registry says so too; runtime b is unaffected
        assert time.monotonic() - t_cut < 5
        assert not healthy(server, "a")
        assert healthy(server, "b")
        assert cb.eval("21 * 2", timeout=20) == "42"
        got += read_for(c, msg_id, max(0.0, 15 - (time.monotonic() - t_cut)))
        proxy.restore()
        t_restore = time.monotonic()
        got += read_for(c, msg_id, 10, stop_notice="reconnected")
        print(f"link restored: reconnected after {time.monotonic() - t_restore:.2f}s")
        got += read_for(c, msg_id, 45, until_idle=True)
    kinds = notices(got)
    assert kinds.index("reconnecting") < kinds.index("runtime_lost") < kinds.index("reconnected")
    assert numbers(stream_text(got)) == list(range(60))
    last = got[-1]
    assert last["header"]["msg_type"] == "status" and last["content"]["execution_state"] == "idle"
    assert any(m["header"]["msg_type"] == "execute_input" for m in got)
    wait_for(lambda: healthy(server, "a"), 10)


def test_gateway_killed_lost_within_5s_back_healthy_without_server_restart(env):
    server, b = env["server"], env["b"]
    kid_a = start_session(server, "accel--a--python3", "a-kill.ipynb")["kernel"]["id"]
    kid_b = start_session(server, "accel--b--python3", "b-kill.ipynb")["kernel"]["id"]
    with (
        KernelClient(server.url, kid_b, server.token, protocol="v1") as cb,
        KernelClient(server.url, kid_a, server.token, protocol="v1") as ca,
    ):
        assert cb.eval("1 + 1", timeout=30) == "2"
        msg_id = send_execute(cb, "import time; time.sleep(60)")
        b.proc.kill()  # SIGKILL: no goodbye
        t_kill = time.monotonic()
        got = read_for(cb, msg_id, 6, stop_notice="runtime_lost")
        assert "runtime_lost" in notices(got), notices(got)
        lost_after = time.monotonic() - t_kill
        print(f"gateway killed: runtime_lost after {lost_after:.2f}s")
        assert lost_after < 5, lost_after
        wait_for(lambda: not healthy(server, "b"), 5 - lost_after)
        assert healthy(server, "a") and ca.eval("6 * 7", timeout=20) == "42"

        # the same gateway comes back on the same URL; the server is not restarted
        env["b"] = start_gateway(env["tmp"] / "b2", token=b.token, port=b.port)
        wait_for(lambda: healthy(server, "b"), 15)
        got = read_for(cb, msg_id, 15, stop_at="status")
    assert "kernel_dead" in notices(got), notices(got)
    assert got[-1]["header"]["msg_type"] == "status"
    assert got[-1]["content"]["execution_state"] == "dead"
    assert server.api("GET", f"/api/kernels/{kid_b}").status_code == 404
    kid = start_session(server, "accel--b--python3", "b-again.ipynb")["kernel"]["id"]
    with KernelClient(server.url, kid, server.token) as c:
        assert c.eval("2 ** 10", timeout=30) == "1024"
