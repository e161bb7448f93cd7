"""@jupyterlab/services 7 in node (services_client.cjs), used as VS Code's Jupyter extension
uses it, against stock jupyter_server, our gateway and our full path: the same answers as
stock, and its own reconnect after the socket drops gets the cell's output and reply."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CLIENT = HERE / "services_client.cjs"
if not (REPO / "node_modules" / "@jupyterlab" / "services").is_dir():
    pytestmark.append(pytest.mark.skip(reason="node_modules/@jupyterlab/services missing"))


def node(url: str, token: str, kernel: str, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["node", str(CLIENT), url, kernel, mode],
        env={**os.environ, "CONFORMANCE_TOKEN": token},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )


def last_json(lines: list[str]) -> dict:
    for line in reversed(lines):
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError("no result from the services client:\n" + "".join(lines[-20:]))


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[dict, list[str]]:
    out, _ = proc.communicate(timeout=timeout)
    lines = out.splitlines(True)
    return last_json(lines), lines


def test_session_flow_matches_stock(targets):
    seen = {}
    for name in ("stock_server", "gateway", "full"):
        t = targets[name]
        seen[name], lines = finish(node(t.url, t.token, t.kernel_name, "api"))
        assert "error" not in seen[name], (name, "".join(lines[-30:]))
    ref = seen["stock_server"]
    assert ref["first"]["iopub"][-1] == "status:idle" and ref["interrupted"]["ename"]
    for name in ("gateway", "full"):
        assert seen[name] == ref, (name, seen[name], ref)


@pytest.mark.parametrize("path", ["gateway", "full_client_leg", "full_gateway_leg"])
def test_own_reconnect_after_cut(cut_paths, path):
    p = cut_paths[path]
    proxy = p.client_proxy or p.upstream_proxy
    proc = node(p.client_url, p.target.token, p.target.kernel_name, "cut")
    lines: list[str] = []
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("CUT_NOW"):
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(60), "".join(lines[-30:])
        proxy.cut()
        time.sleep(3)
        proxy.restore()
        proc.wait(90)
        reader.join(5)
    finally:
        proxy.restore()
        if proc.poll() is None:
            proc.kill()
    out = last_json(lines)
    assert "error" not in out, "".join(lines[-30:])
    r = out["result"]
    assert r["iopub"] == [
        "status:busy",
        "execute_input",
        "stream",
        "text:a\n",
        "stream",
        "text:b\n",
        "status:idle",
    ], out
    assert r["status"] == "ok" and r["count"] == 1, out
    if p.client_proxy is not None:  # its own socket dropped: it reconnected by itself
        assert "connecting" in out["statuses"] and out["statuses"][-1] == "connected", out
