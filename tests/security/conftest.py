"""One real gateway (--debug) and one real jupyter_server with jupyterlab_accel (DEBUG) routing
to it as runtime "a", with known tokens the security tests grep for. Stopped by PID."""

from __future__ import annotations

import secrets

import pytest

from tests.server.conftest import server_with
from tests.support.procs import start_gateway

# Distinctive values: tests grep for them in responses, logs, command lines and notebooks.
GW_TOKEN = "gwtok-" + secrets.token_hex(16)
SERVER_TOKEN = "srvtok-" + secrets.token_hex(16)


@pytest.fixture(scope="session")
def sec_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sec")
    procs = []
    try:
        gw = start_gateway(tmp / "gw", "--debug", token=GW_TOKEN)
        procs.append(gw)
        server = server_with(
            tmp / "server",
            [
                {
                    "name": "a",
                    "display_name": "A box",
                    "url": gw.url,
                    "token_env": "ACCEL_SEC_A_TOKEN",
                }
            ],
            env={"ACCEL_SEC_A_TOKEN": GW_TOKEN},
            token=SERVER_TOKEN,
            extra={"ServerApp": {"log_level": "DEBUG"}},
        )
        procs.append(server)
        yield {"gw": gw, "server": server, "tmp": tmp}
    finally:
        for p in reversed(procs):
            p.stop()
