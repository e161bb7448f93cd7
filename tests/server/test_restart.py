"""A restarted server re-attaches to remote kernels still running, sessions included."""

import json
import os
import stat

import pytest

from tests.server.conftest import get_json, server_with, start_session
from tests.support.kernel_ws import KernelClient
from tests.support.procs import start_gateway

pytestmark = pytest.mark.timeout(180)


def test_restart_reattaches_with_state(tmp_path):
    gw = start_gateway(tmp_path / "gw")
    runtimes = [{"name": "gw", "url": gw.url, "token": gw.token}]
    server = server_with(tmp_path / "s", runtimes)
    try:
        s = start_session(server, "accel--gw--python3", "keep.ipynb")
        kid = s["kernel"]["id"]
        with KernelClient(server.url, kid, server.token) as kc:
            kc.execute("answer = 4242")
        local = start_session(server, "python3", "local.ipynb")  # dies with the server
        state = tmp_path / "s" / "state"
        for name in ("kernels.json", "sessions.db"):
            assert stat.S_IMODE(os.stat(state / name).st_mode) == 0o600, name
        assert json.loads((state / "kernels.json").read_text())[kid]["runtime"] == "gw"
        server.stop()

        assert kid in [k["id"] for k in gw.api("GET", "/api/kernels").json()], (
            "remote kernels outlive the server"
        )
        server = server_with(tmp_path / "s", runtimes)
        sessions = get_json(server, "/api/sessions")
        assert [(x["id"], x["path"], x["kernel"]["id"]) for x in sessions] == [
            (s["id"], "keep.ipynb", kid)
        ]
        assert local["id"] not in [x["id"] for x in sessions]
        assert get_json(server, f"/api/kernels/{kid}")["name"] == "accel--gw--python3"
        with KernelClient(server.url, kid, server.token, protocol="v1") as kc:
            assert kc.eval("answer") == "4242"

        # a kernel that died while the server was down is dropped with its session
        gw.api("DELETE", f"/api/kernels/{kid}")
        assert get_json(server, "/api/sessions") == []
        assert server.api("GET", f"/api/kernels/{kid}").status_code == 404
        assert json.loads((state / "kernels.json").read_text()) == {}
    finally:
        server.stop()
        gw.stop()
