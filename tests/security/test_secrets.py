"""Secrets never leak: the gateway token (configured through an env var), a token of a runtime a
user adds, and S3 credentials of a mount (moto) never appear in any /accel or /api/accel response
(bodies and headers), the server or gateway logs (DEBUG), rclone's logs, /proc/*/cmdline of any
descendant of either process, or a saved notebook."""

from __future__ import annotations

import json
import secrets

import psutil
import requests
import websocket
from accel_gateway.mounts.fuse import fuse_problem

from tests.mounts.conftest import S3_KEY, S3_SECRET, moto  # noqa: F401 (the moto fixture)
from tests.server.conftest import start_session
from tests.support.kernel_ws import KernelClient

from .conftest import GW_TOKEN

USER_RT_TOKEN = "userrt-" + secrets.token_hex(16)


class Recorder:
    """Every response seen, headers and body, as text."""

    def __init__(self):
        self.texts: list[str] = []

    def __call__(self, proc, method, path, **kw) -> requests.Response:
        r = proc.api(method, path, **kw)
        self.texts.append(f"{method} {path} {r.status_code}\n{dict(r.headers)}\n{r.text}")
        return r


def descendants_cmdlines(*pids: int) -> list[str]:
    out = []
    for pid in pids:
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            try:
                with open(f"/proc/{p.pid}/cmdline", "rb") as f:
                    out.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass  # exited meanwhile
    return out


def test_no_secret_anywhere(sec_env, moto, tmp_path):  # noqa: F811
    server, gw = sec_env["server"], sec_env["gw"]
    rec = Recorder()
    bucket = moto.bucket()
    mode = "auto" if fuse_problem() is None else "sync"

    # a mount with storage credentials, through the server (what the browser does)
    body = {
        "source": f"store:{bucket}",
        "config": moto.config(),
        "mount_point": "drive",
        "mode": mode,
    }
    r = rec(server, "POST", "/accel/runtimes/a/mounts", json=body, timeout=120)
    assert r.status_code == 201, r.text
    mid = r.json()["id"]
    # a failing mount: its error message quotes rclone, never the settings
    bad = {
        **body,
        "mount_point": "bad",
        "mode": "sync",
        "config": {**moto.config(), "endpoint": "http://127.0.0.1:9"},
    }
    r = rec(server, "POST", "/accel/runtimes/a/mounts", json=bad, timeout=120)
    assert r.status_code >= 400 and r.json()["message"], r.text
    # a runtime a user adds with its token
    r = rec(
        server,
        "POST",
        "/accel/runtimes",
        json={"name": "mine", "url": gw.url, "token": USER_RT_TOKEN},
    )
    assert r.status_code == 201, r.text

    # a kernel on the runtime, a cell that prints its environment, saved in a notebook
    session = start_session(server, "accel--a--python3", "leak.ipynb")
    kid = session["kernel"]["id"]
    with KernelClient(server.url, kid, server.token, timeout=60, protocol="auto") as kc:
        out = kc.execute(
            "import os, json\nprint(json.dumps(dict(os.environ)))\n"
            "print(open('/proc/self/cmdline').read())",
            timeout=60,
        )
    assert out["reply"]["status"] == "ok", out
    nb = {
        "type": "notebook",
        "format": "json",
        "content": {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "accel--a--python3", "display_name": "x"}},
            "cells": [
                {
                    "cell_type": "code",
                    "id": "c1",
                    "metadata": {},
                    "execution_count": 1,
                    "source": "print(os.environ)",
                    "outputs": [{"output_type": "stream", "name": "stdout", "text": out["stdout"]}],
                }
            ],
        },
    }
    assert rec(server, "PUT", "/api/contents/leak.ipynb", json=nb).status_code in (200, 201)
    assert rec(server, "PUT", "/accel/runtimes/a/contents/leak.ipynb", json=nb).status_code in (
        200,
        201,
    )

    # everything the browser can read
    for path in [
        "/accel/runtimes",
        "/accel/runtimes/a",
        "/accel/runtimes/mine",
        "/accel/runtimes/a/metrics",
        "/accel/sessions",
        "/accel/runtimes/a/mounts",
        f"/accel/runtimes/a/mounts/{mid}",
        "/accel/runtimes/a/mounts/remotes",
        "/accel/runtimes/a/contents",
        "/accel/runtimes/a/contents/leak.ipynb",
        "/accel/runtimes/a/files/leak.ipynb",
        "/accel/runtimes/nope",
        "/api/kernelspecs",
        "/api/sessions",
        "/api/kernels",
        f"/api/kernels/{kid}",
        "/api/contents/leak.ipynb",
    ]:
        assert rec(server, "GET", path).status_code < 500, path
    rec(server, "POST", f"/accel/kernels/{kid}/keepalive")
    rec(server, "POST", f"/accel/runtimes/a/mounts/{mid}/flush", json={})
    ws = websocket.create_connection(
        server.url.replace("http", "ws", 1) + "/accel/runtimes/a/metrics/stream",
        header=[f"Authorization: token {server.token}"],
        timeout=10,
    )
    rec.texts.append(ws.recv())
    ws.close()
    # the gateway's own API
    for path in [
        "/api/accel/runtime",
        "/api/accel/metrics",
        "/api/accel/kernels",
        "/api/accel/mounts",
        f"/api/accel/mounts/{mid}",
        "/api/accel/mounts/remotes",
        "/api/kernels",
    ]:
        assert rec(gw, "GET", path).status_code == 200, path

    cmdlines = descendants_cmdlines(server.pid, gw.pid)
    assert any("ipykernel" in c for c in cmdlines)
    if mode == "auto":
        assert any("rclone" in c for c in cmdlines), cmdlines
    rec(server, "DELETE", f"/accel/runtimes/a/mounts/{mid}", timeout=120)
    rec(server, "DELETE", f"/api/sessions/{session['id']}")
    rec(server, "DELETE", "/accel/runtimes/mine")

    files = [server.root / "leak.ipynb", gw.root / "leak.ipynb", server.log, gw.log]
    for folder in (sec_env["tmp"] / "gw", sec_env["tmp"] / "server"):
        files += [p for p in folder.rglob("*") if p.is_file() and p.suffix in (".log", ".ipynb")]
    # the mount manager's own state (rclone logs) lives in the gateway's data dir
    state_logs = [p for p in (gw.root.parent).rglob("*.log")]
    blobs = {"responses": "\n".join(rec.texts), "cmdlines": "\n".join(cmdlines)}
    for f in {*files, *state_logs}:
        blobs[str(f)] = f.read_text(errors="replace")
    assert "leak.ipynb" in "".join(blobs) and len(rec.texts) > 30
    assert json.loads(blobs[str(server.root / "leak.ipynb")])["cells"][0]["outputs"]
    for name, secret in (
        ("gateway token", GW_TOKEN),
        ("user runtime token", USER_RT_TOKEN),
        ("S3 secret", S3_SECRET),
        ("S3 key id", S3_KEY),
    ):
        where = [k for k, text in blobs.items() if secret in text]
        assert not where, f"{name} found in {where}"
    # the server's own token is the user's credential to their own server: not in logs either
    assert not any(sec_env["server"].token in blobs[str(p)] for p in (server.log, gw.log))
    assert "[D " in server.logtext() and "[D " in gw.logtext()  # the logs were at DEBUG level
