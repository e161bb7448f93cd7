"""TLS to a gateway whose certificate is signed by a private CA: a runtime configured with that CA
(`ca_certs`) works end to end (a cell runs through the server); without it the runtime is refused
with a clear unhealthy error."""

from __future__ import annotations

import requests

from tests.security.tls import make_ca_and_cert
from tests.server.conftest import server_with, start_session
from tests.support.kernel_ws import KernelClient
from tests.support.procs import start_gateway


def test_private_ca(tmp_path):
    pki = make_ca_and_cert(tmp_path / "pki")
    gw = start_gateway(tmp_path / "gw", f"--certfile={pki['cert']}", f"--keyfile={pki['key']}")
    server = None
    try:
        assert gw.url.startswith("https://")
        r = requests.get(
            gw.url + "/api/accel/runtime", headers=gw.headers, verify=str(pki["ca"]), timeout=10
        )
        assert r.status_code == 200
        server = server_with(
            tmp_path / "server",
            [
                {"name": "with-ca", "url": gw.url, "token": gw.token, "ca_certs": str(pki["ca"])},
                {"name": "no-ca", "url": gw.url, "token": gw.token},
            ],
        )
        rts = {rt["name"]: rt for rt in server.api("GET", "/accel/runtimes").json()}
        assert rts["with-ca"]["healthy"], rts["with-ca"]
        bad = rts["no-ca"]
        assert not bad["healthy"]
        assert "certificate" in (bad["error"] or "").lower(), bad["error"]

        specs = server.api("GET", "/api/kernelspecs").json()["kernelspecs"]
        assert "accel--with-ca--python3" in specs and not any(
            s.startswith("accel--no-ca--") for s in specs
        )
        session = start_session(server, "accel--with-ca--python3", "tls.ipynb")
        kid = session["kernel"]["id"]
        with KernelClient(server.url, kid, server.token, timeout=60, protocol="auto") as kc:
            assert kc.eval("sum(range(10))", timeout=60) == "45"
        assert server.api("GET", "/accel/runtimes/with-ca/metrics").status_code == 200

        # without the CA: starting a kernel there is refused with a message, never a hang
        r = server.api("POST", "/api/kernels", json={"name": "accel--no-ca--python3"}, timeout=30)
        assert 400 <= r.status_code < 600 and r.status_code != 500 and r.json()["message"], r.text
        r = server.api("GET", "/accel/runtimes/no-ca/metrics")
        assert r.status_code == 503 and "certificate" in r.json()["message"].lower(), r.text
        server.api("DELETE", f"/api/sessions/{session['id']}")
    finally:
        if server:
            server.stop()
        gw.stop()
