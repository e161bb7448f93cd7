"""The notebook's files follow it to the runtime: real server, real gateways with their own
workspaces on 127.0.0.1, the kernel moved there by PATCH as Change runtime type does."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.reliability.tcp_proxy import TcpProxy
from tests.server.conftest import server_with, start_session
from tests.support.kernel_ws import KernelClient, _msg
from tests.support.procs import free_port, start_gateway, start_stock_gateway
from tests.support.waiting import wait_for


def notebook_tree(root: Path) -> Path:
    nb = root / "sub" / "dir"
    nb.mkdir(parents=True)
    (nb / "data.csv").write_text("a,b\n1,2\n3,4\n")
    (nb / "utils.py").write_text("def double(x):\n    return 2 * x\n")
    (nb / ".env").write_text("API_KEY=do-not-copy\n")
    (root / "shared").mkdir()
    (root / "shared" / "x.json").write_text('{"x": 7}')
    return nb


def move_to(server, sid: str, kernel_name: str) -> str:
    r = server.api("PATCH", f"/api/sessions/{sid}", json={"kernel": {"name": kernel_name}})
    assert r.status_code == 200, r.text
    return r.json()["kernel"]["id"]


def sync_status(server, kid: str) -> dict:
    r = server.api("GET", f"/accel/kernels/{kid}/filesync")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def env(tmp_path):
    procs = []
    try:
        b = start_gateway(tmp_path / "b")
        procs.append(b)
        proxy = TcpProxy(b.port, free_port())
        stock = start_stock_gateway(tmp_path / "stock")
        procs.append(stock)
        runtimes = [
            {"name": "b", "display_name": "B box", "url": proxy.url, "token": b.token},
            {"name": "stock", "url": stock.url, "token": stock.token},
        ]
        server = server_with(tmp_path / "server", runtimes)
        procs.append(server)
        yield {"b": b, "server": server, "proxy": proxy, "stock": stock}
    finally:
        for p in reversed(procs):
            p.stop()


def test_notebook_folder_follows_the_kernel_and_outputs_come_back(env):
    server, b, proxy = env["server"], env["b"], env["proxy"]
    nb = notebook_tree(server.root)
    s = start_session(server, "python3", path="sub/dir/analysis.ipynb")
    kid = move_to(server, s["id"], "accel--b--python3")
    remote = b.root / "sub" / "dir"
    assert (remote / "data.csv").read_text() == (nb / "data.csv").read_text()
    assert not (remote / ".env").exists(), "files that look like secrets stay behind"

    with KernelClient(server.url, kid, server.token, protocol="v1") as kc:
        out = kc.execute(
            "import os, pandas as pd, utils\n"
            "print(os.getcwd()); print(pd.read_csv('data.csv').shape, utils.double(21))"
        )
        assert out["reply"]["status"] == "ok", out
        cwd, result = out["stdout"].strip().splitlines()
        assert Path(cwd).resolve() == remote.resolve(), "the kernel starts in the synced folder"
        assert result == "(2, 2) 42"

        out = kc.execute("open('out.png', 'wb').write(b'\\x89PNG' + bytes(5000))")
        ended = time.monotonic()
        assert out["reply"]["status"] == "ok", out
        wait_for(lambda: (nb / "out.png").exists(), 5, "out.png locally")
        assert time.monotonic() - ended < 5
        assert (nb / "out.png").read_bytes() == (remote / "out.png").read_bytes()

        # a file written while the link is cut comes back after reconnect
        code = "import time; time.sleep(1.5); open('late.txt', 'w').write('late')"
        kc.send(_msg("execute_request", {"code": code, "silent": False}, kc.session))
        time.sleep(0.5)  # the request is on the runtime; the cut comes while the cell runs
        proxy.cut()
        wait_for(lambda: (remote / "late.txt").exists(), 20, "late.txt on the runtime")
        time.sleep(1)
        assert not (nb / "late.txt").exists()
        proxy.restore()
        wait_for(lambda: (nb / "late.txt").exists(), 20, "late.txt locally after reconnect")

    st = wait_for(
        lambda: (s_ := sync_status(server, kid))["state"] == "synced" and s_, 10, "synced"
    )
    actions = {(e["action"], e["path"]) for e in st["log"]}
    assert ("up", "data.csv") in actions and ("down", "out.png") in actions
    assert ".env" in st["left_behind"]["secrets"]


def test_local_and_runtime_changes_to_one_file_keep_both(env):
    server = env["server"]
    nb = notebook_tree(server.root)
    s = start_session(server, "python3", path="sub/dir/analysis.ipynb")
    kid = move_to(server, s["id"], "accel--b--python3")
    (nb / "data.csv").write_text("edited here\n")
    with KernelClient(server.url, kid, server.token) as kc:
        out = kc.execute("open('data.csv', 'w').write('edited by the kernel, longer\\n')")
        assert out["reply"]["status"] == "ok"
    conflict = nb / "data.conflict-b.csv"
    wait_for(conflict.exists, 10, "the runtime's copy beside the local one")
    assert (nb / "data.csv").read_text() == "edited here\n"
    assert conflict.read_text() == "edited by the kernel, longer\n"
    st = sync_status(server, kid)
    assert st["state"] == "conflict" and st["conflicts"] == ["data.conflict-b.csv"], st


def test_stock_gateway_says_not_supported(env):
    server = env["server"]
    notebook_tree(server.root)
    s = start_session(server, "python3", path="sub/dir/analysis.ipynb")
    kid = move_to(server, s["id"], "accel--stock--python3")
    st = sync_status(server, kid)
    assert st == {"state": "unsupported", "message": "not supported by this runtime"}


def test_whole_root_mode_reaches_files_beside_the_folder(tmp_path):
    b = start_gateway(tmp_path / "b")
    runtimes = [{"name": "b", "url": b.url, "token": b.token}]
    server = server_with(tmp_path / "server", runtimes, extra={"FileSync": {"mode": "whole_root"}})
    try:
        notebook_tree(server.root)
        s = start_session(server, "python3", path="sub/dir/analysis.ipynb")
        kid = move_to(server, s["id"], "accel--b--python3")
        with KernelClient(server.url, kid, server.token) as kc:
            out = kc.execute("import json; print(json.load(open('../../shared/x.json'))['x'])")
            assert out["stdout"].strip() == "7", out
    finally:
        server.stop()
        b.stop()
