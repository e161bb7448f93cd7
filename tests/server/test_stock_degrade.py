"""A stock Jupyter Kernel Gateway as a runtime (the wire Enterprise Gateway on Kubernetes speaks
too): kernels work, each /accel feature that needs our gateway answers as docs/kubernetes.md
says, never a 500 or a hang."""

import pytest

from tests.server.conftest import get_json, start_session
from tests.support.kernel_ws import KernelClient

pytestmark = pytest.mark.timeout(180)


def test_stock_gateway_features_degrade_as_documented(env3):
    server = env3["server"]
    stock = {r["name"]: r for r in get_json(server, "/accel/runtimes")}["stock"]
    assert stock["healthy"] and stock["info"] is None and stock["accelerator"] is None
    s = start_session(server, "accel--stock--python3", "k8s.ipynb")
    kid = s["kernel"]["id"]
    try:
        with KernelClient(server.url, kid, server.token) as kc:
            assert kc.eval("6*7") == "42"
        for method, path in [
            ("GET", f"/accel/kernels/{kid}/journal"),
            ("GET", "/accel/runtimes/stock/metrics"),
            ("GET", "/accel/runtimes/stock/mounts"),
            ("POST", f"/accel/kernels/{kid}/keepalive"),
        ]:
            r = server.api(method, path)
            assert r.status_code == 501, (path, r.status_code, r.text)
            assert r.json()["message"] == "not supported by this runtime"
        # no contents API on a stock gateway: its 404 passes through (the Files panel then
        # shows an empty runtime drive)
        assert server.api("GET", "/accel/runtimes/stock/contents").status_code == 404
    finally:
        server.api("DELETE", f"/api/sessions/{s['id']}")
