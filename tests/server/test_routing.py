"""Kernels routed to their runtime: namespaced specs, sessions, change runtime type (PATCH),
stock gateways, plain standard clients, large outputs through the relay."""

import threading
import time

import psutil
import pytest
import websocket

from tests.server.conftest import get_json, is_descendant, start_session
from tests.support.kernel_ws import KernelClient
from tests.support.waiting import wait_for

PID = "import os; os.getpid()"

pytestmark = pytest.mark.timeout(180)


def test_kernelspecs_are_namespaced_and_say_where(env3):
    specs = get_json(env3["server"], "/api/kernelspecs")["kernelspecs"]
    assert "python3" in specs, "local jupyter_server specs stay available"
    a = specs["accel--a--python3"]
    assert a["name"] == "accel--a--python3"
    assert a["spec"]["display_name"].endswith("· CPU · A box"), a["spec"]["display_name"]
    meta = a["spec"]["metadata"]["accel"]
    assert (meta["runtime"], meta["accelerator"], meta["shape"]) == ("a", "none", "standard")
    stock = specs["accel--stock--python3"]
    assert stock["spec"]["display_name"].endswith("· Stock KG")
    assert stock["spec"]["metadata"]["accel"]["accelerator"] is None
    # one spec by name, and its logo served through this server
    one = get_json(env3["server"], "/api/kernelspecs/accel--b--python3")
    assert one["spec"]["metadata"]["accel"]["runtime"] == "b"
    logo = env3["server"].api("GET", "/kernelspecs/accel--b--python3/logo-64x64.png")
    assert logo.status_code == 200 and logo.content[:4] == b"\x89PNG"
    assert env3["server"].api("GET", "/api/kernelspecs/accel--nope--python3").status_code == 404


def test_session_moves_between_runtimes_with_patch(env3):
    server, a, b = env3["server"], env3["a"], env3["b"]
    s = start_session(server, "accel--a--python3", "move.ipynb")
    kid_a = s["kernel"]["id"]
    with KernelClient(server.url, kid_a, server.token) as kc:
        pid_a = int(kc.eval(PID))
    assert is_descendant(pid_a, a.pid), "the cell ran under runtime a's gateway"

    r = server.api(
        "PATCH", f"/api/sessions/{s['id']}", json={"kernel": {"name": "accel--b--python3"}}
    )
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["id"] == s["id"] and moved["path"] == "move.ipynb"
    kid_b = moved["kernel"]["id"]
    assert kid_b != kid_a and moved["kernel"]["name"] == "accel--b--python3"
    with KernelClient(server.url, kid_b, server.token, protocol="v1") as kc:
        pid_b = int(kc.eval(PID))
    assert is_descendant(pid_b, b.pid), "after PATCH the next cell runs under runtime b"
    # the old kernel is shut down on a, off the PATCH's path
    wait_for(
        lambda: kid_a not in [k["id"] for k in a.api("GET", "/api/kernels").json()],
        10,
        "the replaced kernel stops on runtime a",
    )
    psutil.wait_procs([psutil.Process(pid_a)], timeout=10) if psutil.pid_exists(pid_a) else None
    assert not psutil.pid_exists(pid_a) or psutil.Process(pid_a).status() == psutil.STATUS_ZOMBIE

    # and back to a kernel of this server itself
    r = server.api("PATCH", f"/api/sessions/{s['id']}", json={"kernel": {"name": "python3"}})
    assert r.status_code == 200, r.text
    kid_local = r.json()["kernel"]["id"]
    with KernelClient(server.url, kid_local, server.token) as kc:
        assert is_descendant(int(kc.eval(PID)), server.pid)
    wait_for(
        lambda: kid_b not in [k["id"] for k in b.api("GET", "/api/kernels").json()],
        10,
        "the replaced kernel stops on runtime b",
    )
    assert server.api("DELETE", f"/api/sessions/{s['id']}").status_code == 204


def test_cell_on_stock_gateway(env3):
    server, stock = env3["server"], env3["stock"]
    s = start_session(server, "accel--stock--python3", "stock.ipynb")
    kid = s["kernel"]["id"]
    for protocol in ("json", "v1"):
        with KernelClient(server.url, kid, server.token, protocol=protocol) as kc:
            assert kc.eval("6*7") == "42"
            assert is_descendant(int(kc.eval(PID)), stock.pid)
    # interrupt and restart go to the stock gateway too
    assert server.api("POST", f"/api/kernels/{kid}/interrupt").status_code == 204
    assert server.api("POST", f"/api/kernels/{kid}/restart").status_code == 200
    with KernelClient(server.url, kid, server.token) as kc:
        assert kc.eval("1+1") == "2"
    # listed although stock Kernel Gateway forbids listing its kernels
    assert kid in [k["id"] for k in get_json(server, "/api/kernels")]
    row = {r["kernel_id"]: r for r in get_json(server, "/accel/sessions")}[kid]
    assert (row["runtime"], row["session_id"], row["expires_at"], row["cost"]) == (
        "stock",
        s["id"],
        None,
        None,
    )
    # /api/accel features answer cleanly on a stock gateway
    r = server.api("GET", "/accel/runtimes/stock/metrics")
    assert r.status_code == 501 and r.json()["message"] == "not supported by this runtime"
    r = server.api("POST", f"/accel/kernels/{kid}/keepalive")
    assert r.status_code == 501 and r.json()["message"] == "not supported by this runtime"
    assert server.api("GET", "/accel/runtimes/stock/mounts").status_code == 501
    assert server.api("DELETE", f"/api/sessions/{s['id']}").status_code == 204


def test_interrupt_reaches_the_remote_kernel(env3):
    server = env3["server"]
    kid = server.api("POST", "/api/kernels", json={"name": "accel--a--python3"}).json()["id"]
    result = {}
    try:
        with KernelClient(server.url, kid, server.token) as kc:
            t = threading.Thread(
                target=lambda: result.update(kc.execute("import time; time.sleep(60)"))
            )
            t.start()
            time.sleep(1.5)
            assert server.api("POST", f"/api/kernels/{kid}/interrupt").status_code == 204
            t.join(20)
            assert result["reply"]["status"] == "error"
            assert result["reply"]["ename"] == "KeyboardInterrupt"
    finally:
        server.api("DELETE", f"/api/kernels/{kid}")


def test_plain_client_standard_api_only(env3):
    """What VS Code does: REST + the standard websocket, nothing of ours."""
    server, a = env3["server"], env3["a"]
    names = server.api("GET", "/api/kernelspecs").json()["kernelspecs"]
    remote = sorted(n for n in names if n.startswith("accel--a--"))
    assert remote, names
    r = server.api("POST", "/api/kernels", json={"name": remote[0]})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    assert r.json()["name"] == remote[0]
    assert any(k["id"] == kid for k in server.api("GET", "/api/kernels").json())
    with KernelClient(server.url, kid, server.token) as kc:
        r1 = kc.execute("x = 21\nprint(x * 2)")
        assert r1["stdout"] == "42\n"
        assert is_descendant(int(kc.eval(PID)), a.pid)
    model = server.api("GET", f"/api/kernels/{kid}").json()
    assert model["name"] == remote[0] and model["execution_state"] in ("idle", "busy")
    assert server.api("DELETE", f"/api/kernels/{kid}").status_code == 204
    assert server.api("GET", f"/api/kernels/{kid}").status_code == 404
    for name in ("accel--nope--python3", "accel--a--nospec"):
        r = server.api("POST", "/api/kernels", json={"name": name})
        assert r.status_code == 404 and r.json()["message"], r.text


def test_client_socket_closes_when_runtime_drops_the_kernel(env3):
    server, a = env3["server"], env3["a"]
    kid = server.api("POST", "/api/kernels", json={"name": "accel--a--python3"}).json()["id"]
    with KernelClient(server.url, kid, server.token, timeout=20) as kc:
        assert kc.eval("1") == "1"
        assert a.api("DELETE", f"/api/kernels/{kid}").status_code == 204  # behind our back
        kc.ws.settimeout(10)  # a close, not a timeout (server pings would defeat a long one)
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            for _ in range(100):  # drains the last status messages, then the close
                kc.recv()
    assert server.api("GET", f"/api/kernels/{kid}").status_code == 404


def test_both_legs_always_speak_the_same_protocol(env3):
    """A client offering v1 gets v1 where the runtime speaks it, else the legacy protocol
    (no subprotocol): frames are never converted."""
    server = env3["server"]
    for runtime, v1 in (("a", True), ("legacy", False)):
        kid = server.api(
            "POST", "/api/kernels", json={"name": f"accel--{runtime}--python3"}
        ).json()["id"]
        try:
            with KernelClient(server.url, kid, server.token, protocol="auto") as kc:
                assert kc.v1 is v1, runtime
                assert kc.execute("print('hi')")["stdout"] == "hi\n"
            with KernelClient(server.url, kid, server.token, protocol="json") as kc:
                assert kc.eval("2**10") == "1024"
        finally:
            server.api("DELETE", f"/api/kernels/{kid}")


@pytest.mark.parametrize("protocol", ["json", "v1"])
def test_50mb_output_arrives_whole(env3, protocol):
    server = env3["server"]
    r = server.api("POST", "/api/kernels", json={"name": "accel--a--python3"})
    kid = r.json()["id"]
    size = 50 * 1000 * 1000
    code = f"from IPython.display import display\ndisplay({{'text/plain': 'x' * {size}}}, raw=True)"
    try:
        with KernelClient(server.url, kid, server.token, timeout=120, protocol=protocol) as kc:
            res = kc.execute(code, timeout=120)
            assert res["reply"]["status"] == "ok"
            outs = [o for o in res["outputs"] if "data" in o]
            assert len(outs) == 1, "one single output message"
            assert len(outs[0]["data"]["text/plain"]) == size
            assert kc.eval("'still alive'") == "'still alive'"
            if protocol == "v1":  # memory flat: a second and third 50 MB output add nothing
                rss = psutil.Process(server.pid).memory_info().rss
                for _ in range(2):
                    assert kc.execute(code, timeout=120)["reply"]["status"] == "ok"
                growth = (psutil.Process(server.pid).memory_info().rss - rss) / 1e6
                assert growth < 30, f"server RSS grew {growth:.0f} MB over two more 50 MB outputs"
    finally:
        server.api("DELETE", f"/api/kernels/{kid}")
