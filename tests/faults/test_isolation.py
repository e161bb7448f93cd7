"""Fault isolation per runtime (issue 10): a hung runtime, one answering garbage, one killed
mid-upload, a killed embedded gateway: the others keep working and nobody gets a 500."""

from __future__ import annotations

import json
import select
import socket
import threading
import time

import psutil
import pytest

from tests.faults.conftest import start_bad_runtime
from tests.server.conftest import get_json, server_with, start_session
from tests.support.kernel_ws import KernelClient
from tests.support.procs import start_gateway, start_server

pytestmark = pytest.mark.timeout(240)

LISTINGS = (
    "/api/kernelspecs",
    "/api/kernels",
    "/api/sessions",
    "/accel/runtimes",
    "/accel/sessions",
)
GARBAGE_MODES = ("specs-list", "specs-types", "info-list", "info-types")


def _conns_to(pid: int, port: int) -> int:
    return sum(
        1 for c in psutil.Process(pid).net_connections("tcp") if c.raddr and c.raddr.port == port
    )


def _abandon(server, path: str) -> None:
    """Send one request and go away without reading the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: token {server.token}\r\n\r\n".encode()
        )
        time.sleep(0.3)


def test_hung_runtime_and_abandoned_requests(tmp_path):
    good = start_gateway(tmp_path / "good")
    hung = socket.socket()  # accepts connections (backlog) but never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(128)
    hung_port = hung.getsockname()[1]
    server = server_with(
        tmp_path / "s",
        [
            {"name": "good", "url": good.url, "token": good.token},
            {"name": "hung", "url": f"http://127.0.0.1:{hung_port}", "token": "t"},
        ],
    )
    try:
        threads = [
            threading.Thread(target=_abandon, args=(server, f"/accel/runtimes/hung/contents/f{i}"))
            for i in range(100)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        t0 = time.monotonic()
        s = start_session(server, "accel--good--python3", "good.ipynb")
        with KernelClient(server.url, s["kernel"]["id"], server.token) as kc:
            assert kc.eval("6 * 7") == "42"
        took = time.monotonic() - t0
        print(f"figure: session + cell on another runtime after 100 abandoned: {took:.2f} s")
        assert took < 5, f"a kernel on another runtime took {took:.1f} s"
        rts = {r["name"]: r for r in get_json(server, "/accel/runtimes")}
        assert rts["good"]["healthy"]
        # Abandoned transfers do not keep their upstream connections.
        deadline = time.monotonic() + 5
        while _conns_to(server.pid, hung_port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _conns_to(server.pid, hung_port) == 0
    finally:
        server.stop()
        hung.close()
        good.stop()


def test_garbage_answers_leave_listings_working(tmp_path):
    good = start_gateway(tmp_path / "good")
    bad = {m: start_bad_runtime(tmp_path / m, m) for m in (*GARBAGE_MODES, "kernel-later")}
    runtimes = [{"name": "good", "url": good.url, "token": good.token}]
    runtimes += [{"name": m, "url": p.url, "token": "t"} for m, p in bad.items()]
    server = server_with(tmp_path / "s", runtimes)
    try:
        # kernel-later answers well until it has a kernel; then its kernel models are garbage
        s_later = start_session(server, "accel--kernel-later--python3", "later.ipynb")
        assert s_later["kernel"]["id"]
        for path in LISTINGS:
            r = server.api("GET", path)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
        rts = {r["name"]: r for r in get_json(server, "/accel/runtimes")}
        assert rts["good"]["healthy"] and rts["good"]["error"] is None
        for mode in (*GARBAGE_MODES, "kernel-later"):
            assert not rts[mode]["healthy"], mode
            assert "bad answer" in rts[mode]["error"], (mode, rts[mode]["error"])
        specs = get_json(server, "/api/kernelspecs")["kernelspecs"]
        assert "accel--good--python3" in specs
        assert not any(f"accel--{m}--" in name for name in specs for m in GARBAGE_MODES)
        s = start_session(server, "accel--good--python3", "good.ipynb")
        with KernelClient(server.url, s["kernel"]["id"], server.token) as kc:
            assert kc.eval("1 + 1") == "2"
    finally:
        server.stop()
        for p in bad.values():
            p.stop()
        good.stop()


def test_garbage_at_kernel_start_is_a_502_not_a_500(tmp_path):
    bad = start_bad_runtime(tmp_path / "ks", "kernel-start")
    server = server_with(tmp_path / "s", [{"name": "kernel-start", "url": bad.url, "token": "t"}])
    try:
        r = server.api(
            "POST",
            "/api/sessions",
            json={
                "path": "ks.ipynb",
                "type": "notebook",
                "name": "ks.ipynb",
                "kernel": {"name": "accel--kernel-start--python3"},
            },
        )
        assert r.status_code in (502, 503), r.text
        assert "bad answer" in r.json()["message"]
        rts = {r["name"]: r for r in get_json(server, "/accel/runtimes")}
        assert "bad answer" in rts["kernel-start"]["error"]
    finally:
        server.stop()
        bad.stop()


def test_one_slow_health_check_does_not_hide_kernelspecs(tmp_path):
    """Stale while failing: a healthy runtime whose checks start timing out stays listed with
    its kernelspecs for `health_grace` (4 s), then is reported down."""
    flag = tmp_path / "slow"
    rt = start_bad_runtime(tmp_path / "rt", "good", slow_flag=flag)
    server = server_with(tmp_path / "s", [{"name": "slowish", "url": rt.url, "token": "t"}])
    try:
        assert "accel--slowish--python3" in get_json(server, "/api/kernelspecs")["kernelspecs"]
        flag.touch()
        time.sleep(1.1)  # past health_max_age: the next listing checks again, and times out
        t0 = time.monotonic()
        specs = get_json(server, "/api/kernelspecs")["kernelspecs"]
        assert time.monotonic() - t0 < 2.5
        assert "accel--slowish--python3" in specs, "one slow check hid the kernelspecs"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rts = {r["name"]: r for r in get_json(server, "/accel/runtimes")}
            if not rts["slowish"]["healthy"]:
                break
        assert rts["slowish"]["error"] == "unreachable: timed out"
        flag.unlink()
        time.sleep(1.1)
        assert get_json(server, "/accel/runtimes")[0]["healthy"]
    finally:
        server.stop()
        rt.stop()


def _upload(server, path: str, size: int, on_progress, chunk: int = 1 << 20):
    """PUT a contents-API body of `size` bytes chunk by chunk over a raw socket; after each
    chunk call on_progress(sent); returns (status, body, time the answer came)."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    head = b'{"type": "file", "format": "text", "content": "'
    tail = b'"}'
    s.sendall(
        (
            f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: token {server.token}\r\nContent-Length: {size}\r\n\r\n"
        ).encode()
        + head
    )
    sent = len(head)
    data = b"x" * chunk
    try:
        while sent < size:
            readable, _, _ = select.select([s], [], [], 0)
            if readable:
                break
            n = min(chunk, size - len(tail) - sent)
            if n <= 0:
                s.sendall(tail)
                sent = size
                break
            try:
                s.sendall(data[:n])
            except OSError:
                break
            sent += n
            on_progress(sent)
            time.sleep(0.01)
        s.settimeout(30)
        answer = b""
        while b"\r\n\r\n" not in answer:
            part = s.recv(65536)
            if not part:
                break
            answer += part
        at = time.monotonic()
        status = int(answer.split(b" ", 2)[1]) if answer else 0
        try:
            s.settimeout(2)
            while True:
                part = s.recv(65536)
                if not part:
                    break
                answer += part
        except OSError:
            pass
        return status, answer.split(b"\r\n\r\n", 1)[-1], at
    finally:
        s.close()


def test_runtime_killed_during_upload_gives_502_at_once(tmp_path):
    gw = start_gateway(tmp_path / "gw")
    server = server_with(tmp_path / "s", [{"name": "g", "url": gw.url, "token": gw.token}])
    killed = {}

    def progress(sent):
        if sent > 30 << 20 and not killed:
            gw.proc.kill()
            killed["at"] = time.monotonic()

    try:
        status, body, at = _upload(
            server, "/accel/runtimes/g/contents/big.txt", 150 << 20, progress
        )
        assert killed, "the upload ended before the kill"
        assert status == 502, (status, body[:300])
        print(f"figure: 502 {at - killed['at']:.3f} s after the kill")
        assert at - killed["at"] < 2, f"502 came {at - killed['at']:.1f} s after the kill"
        assert b"g" in body and b"message" in body
    finally:
        server.stop()
        gw.stop()


def test_embedded_gateway_restarted_after_sigkill(tmp_path):
    server = start_server(tmp_path, f"--AccelState.state_dir={tmp_path / 'state'}")
    try:
        assert get_json(server, "/accel/runtimes")[0]["healthy"]

        def gateway():
            kids = psutil.Process(server.pid).children()
            return [p for p in kids if "accel_gateway" in " ".join(p.cmdline())]

        (first,) = gateway()
        first.kill()
        killed = time.monotonic()
        first.wait(5)
        while True:
            r = server.api(
                "POST",
                "/api/sessions",
                json={
                    "path": "n.ipynb",
                    "type": "notebook",
                    "name": "n.ipynb",
                    "kernel": {"name": "accel--local--python3"},
                },
            )
            if r.status_code == 201:
                break
            assert time.monotonic() - killed < 10, r.text
            time.sleep(0.3)
        with KernelClient(server.url, r.json()["kernel"]["id"], server.token) as kc:
            assert kc.eval("'alive'") == "'alive'"
        took = time.monotonic() - killed
        print(f"figure: cell on the restarted embedded runtime {took:.2f} s after SIGKILL")
        assert took < 10, f"a cell ran on 'This machine' {took:.1f} s after the kill"
        (second,) = gateway()
        assert second.pid != first.pid
        local = get_json(server, "/accel/runtimes")[0]
        assert local["healthy"] and "restarted" in local["notice"]
        assert json.dumps(local).count("token") == 0
    finally:
        server.stop()
