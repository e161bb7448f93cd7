"""One runtime dies or hangs: the listing stays fast, it is reported unhealthy within 5 s, the
others keep working. The embedded runtime works with zero configuration."""

import json
import os
import socket
import stat
import time

import psutil
import pytest

from tests.server.conftest import get_json, is_descendant, server_with, start_session
from tests.support.kernel_ws import KernelClient
from tests.support.procs import start_gateway, start_server

pytestmark = pytest.mark.timeout(180)


def test_dead_and_hung_runtimes(tmp_path):
    x = start_gateway(tmp_path / "x")
    y = start_gateway(tmp_path / "y")
    hung = socket.socket()  # accepts connections (backlog) but never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    hung_url = f"http://127.0.0.1:{hung.getsockname()[1]}"
    server = server_with(
        tmp_path / "s",
        [
            {"name": "x", "url": x.url, "token": x.token},
            {"name": "y", "url": y.url, "token": y.token},
            {"name": "hung", "url": hung_url, "token": "t"},
        ],
    )
    try:
        s = start_session(server, "accel--y--python3", "y.ipynb")
        kid = s["kernel"]["id"]
        with KernelClient(server.url, kid, server.token) as kc:
            kc.execute("v = 'on y'")

        t0 = time.monotonic()
        rts = {r["name"]: r for r in get_json(server, "/accel/runtimes")}
        assert time.monotonic() - t0 < 2.5, "a hung runtime never holds the listing past ~2 s"
        assert rts["x"]["healthy"] and rts["y"]["healthy"]
        assert not rts["hung"]["healthy"] and rts["hung"]["error"] == "unreachable: timed out"

        x.proc.kill()  # SIGKILL by PID
        killed = time.monotonic()
        while True:
            rts = {r["name"]: r for r in get_json(server, "/accel/runtimes")}
            if not rts["x"]["healthy"]:
                break
            assert time.monotonic() - killed < 5, "dead runtime reported within 5 s"
            time.sleep(0.2)
        assert rts["x"]["error"].startswith("unreachable")
        assert rts["y"]["healthy"]

        t0 = time.monotonic()
        specs = get_json(server, "/api/kernelspecs")["kernelspecs"]
        assert time.monotonic() - t0 < 2.5
        assert "accel--y--python3" in specs and "accel--x--python3" not in specs
        with KernelClient(server.url, kid, server.token) as kc:
            assert kc.eval("v") == "'on y'"
        r = server.api("POST", "/api/kernels", json={"name": "accel--x--python3"})
        assert 400 <= r.status_code < 600 and r.json()["message"]
        t0 = time.monotonic()
        assert server.api("GET", "/api/sessions").status_code == 200
        assert server.api("GET", "/accel/sessions").status_code == 200
        assert time.monotonic() - t0 < 5
    finally:
        server.stop()
        hung.close()
        x.stop()
        y.stop()


def test_embedded_runtime_zero_config(tmp_path):
    """No runtime configured at all: 'local' (This machine) is there and runs cells."""
    server = start_server(tmp_path, f"--AccelState.state_dir={tmp_path / 'state'}")
    try:
        rts = get_json(server, "/accel/runtimes")
        assert [r["name"] for r in rts] == ["local"]
        local = rts[0]
        assert local["healthy"] and local["embedded"] and local["display_name"] == "This machine"
        assert local["url"] == "unix socket (private)"  # no port anyone could race for
        gw = [
            p
            for p in psutil.Process(server.pid).children()
            if "accel_gateway" in " ".join(p.cmdline())
        ]
        assert len(gw) == 1
        assert not any(
            local_token in " ".join(gw[0].cmdline()) for local_token in ("token", "TOKEN")
        )
        token = gw[0].environ()["JUPYTER_TOKEN"]  # generated, handed over in the environment
        assert len(token) >= 32 and token != server.token
        log = tmp_path / "state" / "embedded-gateway.log"
        assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
        specs = get_json(server, "/api/kernelspecs")["kernelspecs"]
        assert token not in json.dumps(specs) + json.dumps(get_json(server, "/accel/runtimes"))
        assert token not in server.logtext() and token not in log.read_text()
        assert (
            specs["accel--local--python3"]["spec"]["display_name"]
            == "Python 3 (ipykernel) · CPU · This machine"
        )
        s = start_session(server, "accel--local--python3", "local.ipynb")
        with KernelClient(server.url, s["kernel"]["id"], server.token) as kc:
            pid = int(kc.eval("import os; os.getpid()"))
            assert kc.eval("import os; os.getcwd()") == repr(str(server.root))
        assert is_descendant(pid, gw[0].pid)
        gw_pid = gw[0].pid
    finally:
        server.stop()
    # stopped by PID at server shutdown, its kernel with it
    gone, alive = psutil.wait_procs(
        [psutil.Process(p) for p in (gw_pid, pid) if psutil.pid_exists(p)], timeout=10
    )
    assert not alive
