"""The /accel REST API: runtimes (add, remove, validation), metrics (one upstream for many
watchers), streamed contents/files proxies, sessions across runtimes, keepalive."""

import base64
import json
import os
import stat
import threading
import time

import psutil
import pytest
import requests
import websocket

from tests.server.conftest import get_json, start_session
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(180)


def test_runtimes_listing(env3):
    rts = {r["name"]: r for r in get_json(env3["server"], "/accel/runtimes")}
    assert set(rts) == {"a", "b", "stock", "legacy"}
    a = rts["a"]
    assert a["healthy"] and a["error"] is None and a["display_name"] == "A box"
    assert a["url"] == env3["a"].url and a["price_per_hour"] == 3.6
    assert a["info"]["accelerator"] == "none" and not a["embedded"] and not a["removable"]
    assert rts["stock"]["healthy"] and rts["stock"]["info"] is None
    for r in rts.values():
        assert "token" not in json.dumps(r).lower()


def test_add_validate_remove_runtime(env3):
    server, b = env3["server"], env3["b"]
    bad = [
        ({"name": "Bad_Name", "url": b.url, "token": "t"}, 400),
        ({"name": "x--y", "url": b.url, "token": "t"}, 400),
        ({"name": "nourl", "token": "t"}, 400),
        ({"name": "creds", "url": "http://u:p@127.0.0.1:1", "token": "t"}, 400),
        ({"name": "ftp", "url": "ftp://127.0.0.1", "token": "t"}, 400),
        ({"name": "tok", "url": b.url, "token": 5}, 400),
        ({"name": "extra", "url": b.url, "token": "t", "shell": "rm"}, 400),
        ([1, 2], 400),
        ({"name": "a", "url": b.url, "token": "t"}, 409),
    ]
    for body, code in bad:
        r = server.api("POST", "/accel/runtimes", json=body)
        assert r.status_code == code, (body, r.text)
        assert r.json()["message"], r.text
    r = server.api("POST", "/accel/runtimes", data=b"{not json")
    assert r.status_code == 400 and "JSON" in r.json()["message"]

    r = server.api(
        "POST",
        "/accel/runtimes",
        json={"name": "c", "url": b.url, "token": b.token, "display_name": "C box"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["healthy"] and r.json()["removable"] and b.token not in r.text
    state = env3["server"].root.parent / "state" / "runtimes.json"
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    assert json.loads(state.read_text())[0]["token"] == b.token
    specs = get_json(server, "/api/kernelspecs")["kernelspecs"]
    assert specs["accel--c--python3"]["spec"]["display_name"].endswith("· C box")

    r = server.api("POST", "/accel/runtimes", json={"name": "wrong", "url": b.url, "token": "nope"})
    assert r.status_code == 201 and not r.json()["healthy"]
    assert "authentication" in r.json()["error"]
    assert "accel--wrong--python3" not in get_json(server, "/api/kernelspecs")["kernelspecs"]

    r = server.api("DELETE", "/accel/runtimes/a")
    assert r.status_code == 403 and "configuration" in r.json()["message"]
    for name in ("c", "wrong"):
        assert server.api("DELETE", f"/accel/runtimes/{name}").status_code == 204
    assert server.api("DELETE", "/accel/runtimes/c").status_code == 404
    assert json.loads(state.read_text()) == []
    assert server.api("GET", "/accel/runtimes/nope/metrics").status_code == 404


def test_requires_auth(env3):
    url = env3["server"].url
    for path in (
        "/accel/runtimes",
        "/accel/sessions",
        "/accel/runtimes/a/metrics",
        "/accel/runtimes/a/contents/",
        "/accel/runtimes/a/files/x",
    ):
        assert requests.get(url + path, timeout=10).status_code in (401, 403), path
    r = requests.put(url + "/accel/runtimes/a/contents/x.txt", data=b"{}", timeout=10)
    assert r.status_code in (401, 403)
    try:
        websocket.create_connection(
            url.replace("http", "ws") + "/accel/runtimes/a/metrics/stream", timeout=10
        )
        raise AssertionError("unauthenticated websocket accepted")
    except websocket.WebSocketBadStatusException as e:
        assert e.status_code in (401, 403)


def _upstream_conns(server_pid: int, port: int) -> set:
    """The server's established connections to the runtime at `port` (its local ports)."""
    return {
        c.laddr.port
        for c in psutil.Process(server_pid).net_connections("tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    }


def test_metrics_one_upstream_for_many_tabs(env3):
    server, a = env3["server"], env3["a"]
    snap = get_json(server, "/accel/runtimes/a/metrics")
    assert "host" in snap and snap["host"]["memory_total"] > 0
    before = _upstream_conns(server.pid, a.port)
    url = server.url.replace("http", "ws") + "/accel/runtimes/a/metrics/stream"
    tabs = [
        websocket.create_connection(
            url, header=[f"Authorization: token {server.token}"], timeout=15
        )
        for _ in range(3)
    ]
    try:
        for ws in tabs:
            sample = json.loads(ws.recv())
            assert "host" in sample, sample
        # The upstream stream may start on an idle kept-alive connection (no new one) or
        # open one; three tabs never make more than one.
        during = _upstream_conns(server.pid, a.port)
        assert len(during - before) <= 1 and len(during) <= len(before) + 1, (before, during)
    finally:
        for ws in tabs:
            ws.close()
    wait_for(
        lambda: during - _upstream_conns(server.pid, a.port),
        5,
        "the upstream stream's connection to close after the last tab",
    )


def test_contents_proxy(env3):
    server, a = env3["server"], env3["a"]
    base = "/accel/runtimes/a/contents"
    r = server.api(
        "PUT", base + "/hello.txt", json={"type": "file", "format": "text", "content": "hi"}
    )
    assert r.status_code == 201, r.text
    assert (a.root / "hello.txt").read_text() == "hi"
    r = server.api("GET", base + "/hello.txt?content=1")
    assert r.status_code == 200 and r.json()["content"] == "hi"
    assert "hello.txt" in [c["name"] for c in get_json(server, base + "/")["content"]]
    assert server.api("GET", "/accel/runtimes/a/files/hello.txt").content == b"hi"
    r = server.api("GET", base + "/missing.txt")
    assert r.status_code == 404
    r = requests.get(
        server.url + "/accel/runtimes/a/contents/%2e%2e/etc", headers=server.headers, timeout=10
    )
    assert r.status_code == 400
    assert server.api("DELETE", base + "/hello.txt").status_code == 204
    assert not (a.root / "hello.txt").exists()


class _PeakRSS:
    def __init__(self, pid):
        self.proc, self.peak, self.stop = psutil.Process(pid), 0, False
        self.base = self.proc.memory_info().rss
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def growth_mb(self):
        self.stop = True
        self.t.join()
        return (self.peak - self.base) / 1e6


def test_big_files_stream_through_flat_memory(env3):
    server, a = env3["server"], env3["a"]
    size = 400 * 1000 * 1000
    with open(a.root / "big.bin", "wb") as f:
        f.truncate(size)
    rss = _PeakRSS(server.pid)
    got = 0
    with requests.get(
        server.url + "/accel/runtimes/a/files/big.bin",
        headers=server.headers,
        stream=True,
        timeout=120,
    ) as r:
        assert r.status_code == 200
        for chunk in r.iter_content(1 << 20):
            got += len(chunk)
    growth = rss.growth_mb()
    assert got == size
    assert growth < 100, f"server RSS grew {growth:.0f} MB for a {size / 1e6:.0f} MB download"
    (a.root / "big.bin").unlink()

    # upload: a 60 MB (base64) contents model streamed in as it is produced
    raw = os.urandom(45 * 1000 * 1000)
    b64 = base64.b64encode(raw)

    def body():
        yield b'{"type": "file", "format": "base64", "content": "'
        for i in range(0, len(b64), 1 << 20):
            yield b64[i : i + (1 << 20)]
        yield b'"}'

    rss = _PeakRSS(server.pid)
    r = requests.put(
        server.url + "/accel/runtimes/a/contents/up.bin",
        data=body(),
        headers={**server.headers, "Content-Type": "application/json"},
        timeout=120,
    )
    growth = rss.growth_mb()
    assert r.status_code == 201, r.text
    assert (a.root / "up.bin").read_bytes() == raw
    assert growth < 40, f"server RSS grew {growth:.0f} MB for a 60 MB upload"
    (a.root / "up.bin").unlink()


def test_upload_to_dead_runtime_fails_cleanly(env3):
    server = env3["server"]
    from tests.support.procs import free_port

    r = server.api(
        "POST",
        "/accel/runtimes",
        json={"name": "gone", "url": f"http://127.0.0.1:{free_port()}", "token": "t"},
    )
    assert r.status_code == 201 and not r.json()["healthy"]
    try:
        t0 = time.monotonic()
        body = (b"x" * (1 << 20) for _ in range(20))
        r = requests.put(
            server.url + "/accel/runtimes/gone/contents/f.bin",
            data=body,
            headers=server.headers,
            timeout=30,
        )
        assert r.status_code == 502 and "unreachable" in r.json()["message"]
        assert time.monotonic() - t0 < 10
        r = server.api("GET", "/accel/runtimes/gone/files/f.bin")
        assert r.status_code == 502 and r.json()["message"]
        r = server.api("GET", "/accel/runtimes/gone/metrics")
        assert r.status_code == 503 and "unavailable" in r.json()["message"]
    finally:
        assert server.api("DELETE", "/accel/runtimes/gone").status_code == 204


def test_mounts_passthrough(env3):
    server = env3["server"]
    r = server.api("GET", "/accel/runtimes/a/mounts")
    assert r.status_code == 200 and isinstance(r.json(), list), r.text
    r = server.api("POST", "/accel/runtimes/a/mounts", json={"nonsense": True})
    assert 400 <= r.status_code < 500 and r.json()["message"], r.text
    assert server.api("GET", "/accel/runtimes/a/mounts/nope-id").status_code in (404, 405)


def test_sessions_overview_keepalive_delete(env3):
    server, a = env3["server"], env3["a"]
    s = start_session(server, "accel--a--python3", "over.ipynb")
    kid = s["kernel"]["id"]
    rows = {r["kernel_id"]: r for r in get_json(server, "/accel/sessions")}
    row = rows[kid]
    assert row["runtime"] == "a" and row["session_id"] == s["id"] and row["path"] == "over.ipynb"
    assert row["kernel_name"] == "accel--a--python3" and row["started"] and row["last_activity"]
    assert row["expires_at"] is not None and isinstance(row["cost"], float) and row["cost"] >= 0
    r = server.api("POST", f"/accel/kernels/{kid}/keepalive")
    assert r.status_code in (200, 204), r.text
    assert server.api("POST", "/accel/kernels/nope/keepalive").status_code == 404
    assert server.api("DELETE", f"/accel/sessions/{kid}").status_code == 204
    assert kid not in [k["id"] for k in a.api("GET", "/api/kernels").json()]
    assert s["id"] not in [x["id"] for x in get_json(server, "/api/sessions")]
    assert server.api("DELETE", f"/accel/sessions/{kid}").status_code == 404
