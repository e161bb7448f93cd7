"""Real processes for the server-extension tests: gateways, a stock kernel gateway and
jupyter_server with jupyterlab_accel, configured through a JSON config file in tmp."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil
import pytest
import requests

from tests.support.procs import start_gateway, start_server, start_stock_gateway


def server_with(
    workdir: Path,
    runtimes: list[dict],
    *,
    embedded: bool = False,
    env=None,
    extra: dict | None = None,
    token: str | None = None,
):
    """jupyter_server + jupyterlab_accel; state dir and config in workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = {
        "RuntimeRegistry": {"runtimes": runtimes},
        "AccelState": {"state_dir": str(workdir / "state")},
        "EmbeddedGateway": {"enabled": embedded},
    }
    for section, values in (extra or {}).items():
        cfg.setdefault(section, {}).update(values)
    cfg_file = workdir / "accel_config.json"
    cfg_file.write_text(json.dumps(cfg))
    return start_server(workdir, f"--config={cfg_file}", env=env, token=token)


def is_descendant(pid: int, ancestor: int) -> bool:
    try:
        return any(p.pid == ancestor for p in psutil.Process(pid).parents())
    except psutil.NoSuchProcess:
        return False


def start_session(server, kernel_name: str, path: str = "nb.ipynb") -> dict:
    r = server.api(
        "POST",
        "/api/sessions",
        json={"path": path, "type": "notebook", "name": path, "kernel": {"name": kernel_name}},
    )
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="session")
def env3(tmp_path_factory):
    """Two of our gateways (a, b), a stock kernel gateway and a server routing to all three."""
    tmp = tmp_path_factory.mktemp("env3")
    procs = []
    try:
        a = start_gateway(tmp / "a")
        procs.append(a)
        b = start_gateway(tmp / "b")
        procs.append(b)
        stock = start_stock_gateway(tmp / "stock")
        procs.append(stock)
        # a runtime that speaks only the legacy JSON websocket protocol
        legacy = start_gateway(
            tmp / "legacy", "--ZMQChannelsWebsocketConnection.kernel_ws_protocol="
        )
        procs.append(legacy)
        env = {"ACCEL_TEST_A_TOKEN": a.token}
        token_file = tmp / "b.token"
        token_file.write_text(b.token)
        os.chmod(token_file, 0o600)
        runtimes = [
            {
                "name": "a",
                "display_name": "A box",
                "url": a.url,
                "token_env": "ACCEL_TEST_A_TOKEN",
                "price_per_hour": 3.6,
            },
            {"name": "b", "display_name": "B box", "url": b.url, "token_file": str(token_file)},
            {"name": "stock", "display_name": "Stock KG", "url": stock.url, "token": stock.token},
            {"name": "legacy", "url": legacy.url, "token": legacy.token},
        ]
        server = server_with(tmp / "server", runtimes, env=env)
        procs.append(server)
        yield {"a": a, "b": b, "stock": stock, "legacy": legacy, "server": server, "tmp": tmp}
    finally:
        for p in reversed(procs):
            p.stop()


def get_json(server, path):
    r = server.api("GET", path)
    assert r.status_code == 200, r.text
    return r.json()


__all__ = ["server_with", "is_descendant", "start_session", "get_json", "requests"]
