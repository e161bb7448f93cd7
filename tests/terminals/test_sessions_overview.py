"""Manage sessions' data: GET /accel/terminals lists the terminals of every runtime (a real
gateway; a stock Kernel Gateway has none), one is terminated through its runtime's route, and
/accel/sessions rows keep their fields and add `job` (null off a cluster)."""

from __future__ import annotations

import pytest
import requests

from tests.server.conftest import server_with
from tests.support.procs import start_gateway, start_stock_gateway


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("terminals-overview")
    procs = []
    try:
        gpu = start_gateway(tmp / "gpu")
        procs.append(gpu)
        stock = start_stock_gateway(tmp / "stock")
        procs.append(stock)
        runtimes = [
            {"name": "gpu", "display_name": "GPU box", "url": gpu.url, "token": gpu.token},
            {"name": "stock", "url": stock.url, "token": stock.token},
        ]
        server = server_with(tmp / "server", runtimes)
        procs.append(server)
        yield {"server": server, "gpu": gpu}
    finally:
        for p in reversed(procs):
            p.stop()


def test_terminals_are_listed_and_can_be_terminated(env):
    server, gpu = env["server"], env["gpu"]
    assert server.api("GET", "/accel/terminals").json() == []
    r = server.api("POST", "/accel/runtimes/gpu/api/terminals", json={})
    assert r.status_code == 200, r.text
    name = r.json()["name"]

    listed = server.api("GET", "/accel/terminals").json()
    assert [(t["runtime"], t["name"]) for t in listed] == [("gpu", name)]
    assert listed[0]["runtime_display_name"] == "GPU box"
    assert listed[0]["last_activity"], "the gateway's last activity comes through"

    r = server.api("DELETE", f"/accel/runtimes/gpu/api/terminals/{name}")
    assert r.status_code == 204, r.text
    assert server.api("GET", "/accel/terminals").json() == []
    assert gpu.api("GET", "/api/terminals").json() == []


def test_terminals_need_authentication(env):
    r = requests.get(env["server"].url + "/accel/terminals", timeout=10, allow_redirects=False)
    assert r.status_code in (302, 401, 403), r.status_code


def test_session_rows_keep_their_fields_and_add_job(env):
    server = env["server"]
    r = server.api("POST", "/api/kernels", json={"name": "accel--gpu--python3"})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    try:
        rows = [s for s in server.api("GET", "/accel/sessions").json() if s["kernel_id"] == kid]
        assert len(rows) == 1
        row = rows[0]
        for field in ("session_id", "path", "kernel_name", "runtime", "started", "cost"):
            assert field in row
        assert row["runtime"] == "gpu" and row["job"] is None
    finally:
        server.api("DELETE", f"/api/kernels/{kid}")
