"""The four targets of the conformance suite, started once per session, side by side:
stock jupyter_server with local kernels, stock Kernel Gateway, our gateway, and our full path
(jupyter_server + jupyterlab_accel relaying to our gateway). Each target is a `Target`: where
to start a kernel and where its websocket is."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability.tcp_proxy import TcpProxy
from tests.server.conftest import server_with
from tests.support.procs import Proc, free_port, start_gateway, start_server, start_stock_gateway

TARGETS = ("stock_server", "stock_kg", "gateway", "full")


@dataclass
class Target:
    name: str
    proc: Proc  # what the client talks to
    kernel_name: str = "python3"

    @property
    def url(self) -> str:
        return self.proc.url

    @property
    def token(self) -> str:
        return self.proc.token

    def start_kernel(self) -> str:
        r = self.proc.api("POST", "/api/kernels", json={"name": self.kernel_name})
        assert r.status_code in (200, 201), r.text
        return r.json()["id"]

    def api(self, method: str, path: str, **kw):
        return self.proc.api(method, path, **kw)


def stock_server(workdir, *args, **kw) -> Proc:
    """jupyter_server with neither JupyterLab nor our extension: the reference."""
    return start_server(
        workdir,
        "--ServerApp.jpserver_extensions=jupyterlab_accel=False",
        "--ServerApp.jpserver_extensions=jupyterlab=False",
        *args,
        **kw,
    )


@pytest.fixture(scope="session")
def targets(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("conformance")
    procs: list = []
    try:
        ref = stock_server(tmp / "stock_server")
        procs.append(ref)
        kg = start_stock_gateway(tmp / "stock_kg")
        procs.append(kg)
        gw = start_gateway(tmp / "gateway")
        procs.append(gw)
        full_gw = start_gateway(tmp / "full_gateway")
        procs.append(full_gw)
        server = server_with(
            tmp / "full_server", [{"name": "g", "url": full_gw.url, "token": full_gw.token}]
        )
        procs.append(server)
        yield {
            "stock_server": Target("stock_server", ref),
            "stock_kg": Target("stock_kg", kg),
            "gateway": Target("gateway", gw),
            "full": Target("full", server, "accel--g--python3"),
        }
    finally:
        for p in reversed(procs):
            p.stop()


@dataclass
class CutPath:
    """A client -> [proxy] -> ... -> our gateway path with the proxies a test can cut."""

    name: str
    target: Target  # the client's side (its url goes through `client_proxy` when set)
    client_url: str
    gateway: Proc
    client_proxy: TcpProxy | None = None
    upstream_proxy: TcpProxy | None = None


@pytest.fixture(scope="session")
def cut_paths(tmp_path_factory):
    """Paths with a link a test cuts: client <-> our gateway; client <-> server (+extension)
    <-> gateway on either leg; client <-> stock `jupyter server --gateway-url` <-> gateway."""
    tmp = tmp_path_factory.mktemp("cuts")
    procs: list = []
    proxies: list = []
    try:
        gw = start_gateway(tmp / "gateway")
        procs.append(gw)
        direct = TcpProxy(gw.port, free_port())
        up = TcpProxy(gw.port, free_port())
        stock_up = TcpProxy(gw.port, free_port())
        proxies += [direct, up, stock_up]
        server = server_with(
            tmp / "server",
            [{"name": "g", "url": up.url, "token": gw.token}],
            extra={"AccelWebsocketConnection": {"upstream_ping_interval": 5}},
        )
        procs.append(server)
        front = TcpProxy(server.port, free_port())
        proxies.append(front)
        stock_front = stock_server(
            tmp / "stock_front",
            f"--gateway-url={stock_up.url}",
            "--GatewayClient.gateway_retry_interval=0.2",
            "--GatewayClient.gateway_retry_max=40",
            env={"JUPYTER_GATEWAY_AUTH_TOKEN": gw.token},
        )
        procs.append(stock_front)
        gw_target = Target("gateway", gw)
        full = Target("full", server, "accel--g--python3")
        stock_target = Target("stock_server_gateway_url", stock_front)
        yield {
            "gateway": CutPath("gateway", gw_target, direct.url, gw, client_proxy=direct),
            "full_client_leg": CutPath("full_client_leg", full, front.url, gw, client_proxy=front),
            "full_gateway_leg": CutPath(
                "full_gateway_leg", full, server.url, gw, upstream_proxy=up
            ),
            "stock_server_gateway_url": CutPath(
                "stock_server_gateway_url",
                stock_target,
                stock_front.url,
                gw,
                upstream_proxy=stock_up,
            ),
        }
    finally:
        for p in reversed(procs):
            p.stop()
        for x in proxies:
            x.close()


# -- docs/conformance.md tables, on request (UPDATE_CONFORMANCE_DOC=1) ----------------------
CUT_RESULTS: dict[tuple[str, str, str], str] = {}  # (scenario, protocol, path) -> outcome
_CUT_TEST = re.compile(r"test_cuts\.py::test_(\w+)\[([\w]+)(?:-(json|v1))?\]")


def pytest_runtest_logreport(report):
    m = _CUT_TEST.search(report.nodeid)
    if m is None or (report.when != "call" and not report.skipped and report.passed):
        return
    scenario, path, protocol = m.group(1), m.group(2), m.group(3) or "json"
    if report.skipped:
        outcome = "skipped"
    else:
        outcome = "passes" if report.passed else "fails"
    key = (scenario, protocol, path)
    if CUT_RESULTS.get(key) != "fails":
        CUT_RESULTS[key] = outcome


def pytest_sessionfinish(session):
    if not os.environ.get("UPDATE_CONFORMANCE_DOC"):
        return
    from .table import write_table
    from .test_cuts import PATHS
    from .test_wire import RESULTS

    doc = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"
    if RESULTS:
        write_table(doc, "wire", RESULTS, TARGETS)
    if CUT_RESULTS:
        write_table(doc, "cuts", CUT_RESULTS, PATHS)
