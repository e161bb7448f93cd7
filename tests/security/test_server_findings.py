"""Issue 12, server side: one regression test per finding (each fails on the code before it).

Findings: (1) the embedded gateway's port could be squatted by another local user, (2) the
server's own token went upstream through the proxies, (4) nan/inf prices and malformed URLs
were accepted or gave 500, (6) the mounts proxy forwarded '..' and injected queries, (7)
embedded kernels inherited the server's secrets, (9) a failed runtime add stayed in memory,
(10) two servers could share one state folder, (11) no way to restrict user-added runtimes."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import time

import psutil
import pytest
import requests

from tests.faults.conftest import start_bad_runtime
from tests.server.conftest import get_json, server_with, start_session
from tests.support.kernel_ws import KernelClient
from tests.support.procs import start_gateway, start_server

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A server with one recording runtime "rec" (its requests land in a JSON-lines file)."""
    tmp = tmp_path_factory.mktemp("rec")
    record = tmp / "requests.jsonl"
    rec = start_bad_runtime(tmp / "rt", "good", record=record)
    server = server_with(
        tmp / "s",
        [{"name": "rec", "url": rec.url, "token": "rt-own-token"}],
        token="srv-" + "9" * 40,
    )
    try:
        yield {"server": server, "record": record}
    finally:
        server.stop()
        rec.stop()


def _requests(record):
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines()]


def test_auth_params_never_reach_a_runtime(recorded):
    server, record = recorded["server"], recorded["record"]
    record.unlink(missing_ok=True)
    cookie = {"Cookie": "username-127-0-0-1=secretcookie; _xsrf=xsrfvalue"}
    for path in (
        f"/accel/runtimes/rec/contents/nb.ipynb?token={server.token}&type=file",
        f"/accel/runtimes/rec/files/data.csv?token={server.token}",
        f"/accel/runtimes/rec/mounts?token={server.token}",
    ):
        r = requests.get(server.url + path, headers={**server.headers, **cookie}, timeout=30)
        assert r.status_code < 500, (path, r.text)
    seen = _requests(record)
    forwarded = [s for s in seen if s["path"] != "/api/kernelspecs" and "runtime" not in s["path"]]
    assert {s["path"] for s in forwarded} >= {"/api/contents/nb.ipynb", "/files/data.csv"}
    for s in seen:
        text = json.dumps(s)
        assert server.token not in text and "secretcookie" not in text and "xsrfvalue" not in text
        assert "Cookie" not in s["headers"]
        assert s["headers"].get("Authorization") == "token rt-own-token"
    assert any(s["query"] == "type=file" for s in forwarded)


@pytest.mark.parametrize(
    "body",
    [
        {"price_per_hour": "nan"},
        {"price_per_hour": "inf"},
        {"price_per_hour": -1},
        {"price_per_hour": 1e12},
        {"price_per_hour": True},
        {"url": "http://[::1"},
        {"url": "http://host name:8888"},
        {"url": "http://h\r\nX-Injected: 1"},
        {"url": "http://127.0.0.1:99999"},
        {"url": "http://127.0.0.1:0"},
        {"url": "http://127.0.0.1:8888/?q=1"},
        {"url": "http://exa$mple.org"},
        {"token": "a\r\nX-Injected: 1"},
        {"display_name": "x\ny"},
    ],
)
def test_bad_values_are_400(recorded, body):
    server = recorded["server"]
    full = {"name": "bad", "url": "http://127.0.0.1:9", "token": "t", **body}
    r = server.api("POST", "/accel/runtimes", json=full)
    assert r.status_code == 400, r.text
    assert r.json()["message"]
    rts = get_json(server, "/accel/runtimes")  # valid JSON for browsers: no NaN anywhere
    assert "bad" not in {x["name"] for x in rts}
    json.loads(server.api("GET", "/accel/runtimes").text, parse_constant=pytest.fail)


@pytest.mark.parametrize(
    "method,path,code",
    [
        ("GET", "/mounts/..%2F..%2Fkernels", 404),
        ("GET", "/mounts/%2e%2e/%2e%2e/kernels", 404),
        ("GET", "/mounts/../../api/kernels", 404),
        ("GET", "/mounts/0123456789ab/../../kernels", 404),
        ("GET", "/mounts/notanid", 404),
        ("POST", "/mounts/0123456789ab/flush?x=1", 400),
        ("DELETE", "/mounts/0123456789ab?timeout=1%26evil%3D1", 400),
        ("DELETE", "/mounts/0123456789ab?timeout=5&other=1", 400),
        ("PUT", "/mounts/0123456789ab", 405),
    ],
)
def test_mounts_proxy_forwards_known_paths_only(recorded, method, path, code):
    server, record = recorded["server"], recorded["record"]
    record.unlink(missing_ok=True)
    r = server.api(method, "/accel/runtimes/rec" + path, json={} if method != "GET" else None)
    assert r.status_code == code, r.text
    assert not [s for s in _requests(record) if "mounts" in s["path"] or "kernels" in s["path"]]


def test_mounts_proxy_known_path_goes_through(recorded):
    server, record = recorded["server"], recorded["record"]
    record.unlink(missing_ok=True)
    server.api("DELETE", "/accel/runtimes/rec/mounts/0123456789ab?timeout=5")
    server.api("POST", "/accel/runtimes/rec/mounts/0123456789ab/flush", json={})
    seen = [(s["method"], s["path"], s["query"]) for s in _requests(record)]
    assert ("DELETE", "/api/accel/mounts/0123456789ab", "timeout=5") in seen
    assert ("POST", "/api/accel/mounts/0123456789ab/flush", "") in seen


def test_user_runtimes_restricted(tmp_path):
    rec = start_bad_runtime(tmp_path / "rt", "good")
    off = server_with(
        tmp_path / "off", [], extra={"RuntimeRegistry": {"allow_user_runtimes": False}}
    )
    only = server_with(
        tmp_path / "only",
        [],
        extra={"RuntimeRegistry": {"allowed_urls": [f"http://127.0.0.1:{rec.port}/*"]}},
    )
    try:
        r = off.api("POST", "/accel/runtimes", json={"name": "x", "url": rec.url, "token": "t"})
        assert r.status_code == 403 and "allow_user_runtimes" in r.json()["message"]
        for url in ("http://169.254.169.254", f"http://127.0.0.1:{rec.port + 1}"):
            r = only.api("POST", "/accel/runtimes", json={"name": "m", "url": url, "token": "t"})
            assert r.status_code == 403 and "allowed_urls" in r.json()["message"], url
        r = only.api("POST", "/accel/runtimes", json={"name": "ok", "url": rec.url, "token": "t"})
        assert r.status_code == 201, r.text
    finally:
        off.stop()
        only.stop()
        rec.stop()


def test_second_server_on_one_state_folder_refuses(tmp_path):
    first = server_with(tmp_path / "one", [], embedded=True)
    try:
        s = start_session(first, "accel--local--python3", "keep.ipynb")
        cfg = tmp_path / "one" / "accel_config.json"
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                "--ip=127.0.0.1",
                "--port=0",
                f"--config={cfg}",
                f"--ServerApp.root_dir={tmp_path}",
                "--ServerApp.allow_root=True",
                "--no-browser",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "JUPYTER_TOKEN": "x" * 32},
        )
        assert second.returncode != 0
        assert f"pid {first.pid}" in second.stderr + second.stdout
        sessions = get_json(first, "/api/sessions")
        assert [x["id"] for x in sessions] == [s["id"]]
        with KernelClient(first.url, s["kernel"]["id"], first.token) as kc:
            assert kc.eval("1") == "1"
    finally:
        first.stop()


def test_runtime_add_on_full_disk_leaves_nothing(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(state)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        server = server_with(tmp_path, [], extra={"AccelState": {"state_dir": str(state)}})
        try:
            filler = state / "filler"
            with open(filler, "wb") as f:
                try:
                    f.write(b"x" * (64 << 10))
                except OSError:
                    pass
            r = server.api(
                "POST",
                "/accel/runtimes",
                json={
                    "name": "full",
                    "url": "http://127.0.0.1:9",
                    "token": "t" * 3000,
                    "display_name": "D" * 190,
                },
            )
            assert r.status_code == 507, r.text
            assert "save" in r.json()["message"]
            assert "full" not in {x["name"] for x in get_json(server, "/accel/runtimes")}
        finally:
            server.stop()
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def test_session_start_on_full_disk_leaves_no_kernel(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(state)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    gw = start_gateway(tmp_path / "gw")
    try:
        server = server_with(
            tmp_path,
            [{"name": "g", "url": gw.url, "token": gw.token}],
            extra={"AccelState": {"state_dir": str(state)}},
        )
        try:
            assert get_json(server, "/api/sessions") == []  # sessions.db exists
            with open(state / "filler", "wb") as f:
                try:
                    f.write(b"x" * (1 << 20))
                except OSError:
                    pass
            r = server.api(
                "POST",
                "/api/sessions",
                json={
                    "path": "full.ipynb",
                    "type": "notebook",
                    "name": "full.ipynb",
                    "kernel": {"name": "accel--g--python3"},
                },
            )
            assert r.status_code == 507, r.text
            assert r.json()["message"]
            deadline = time.monotonic() + 10
            while gw.api("GET", "/api/kernels").json() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert gw.api("GET", "/api/kernels").json() == [], "a kernel was left running"
            (state / "filler").unlink()
            assert get_json(server, "/api/sessions") == []
        finally:
            server.stop()
    finally:
        gw.stop()
        subprocess.run(["umount", "-l", str(state)], check=False)


def test_embedded_kernels_do_not_inherit_server_secrets(tmp_path):
    env = {"ACCEL_OTHER_RT_TOKEN": "other-runtime-secret", "AWS_SECRET_ACCESS_KEY": "aws-secret"}
    server = server_with(
        tmp_path,
        [{"name": "other", "url": "http://127.0.0.1:9", "token_env": "ACCEL_OTHER_RT_TOKEN"}],
        embedded=True,
        env=env,
    )
    try:
        s = start_session(server, "accel--local--python3", "env.ipynb")
        with KernelClient(server.url, s["kernel"]["id"], server.token) as kc:
            environ = kc.eval("import os; dict(os.environ)")
        assert "other-runtime-secret" not in environ and "aws-secret" not in environ
        assert server.token not in environ
        assert "PATH" in environ
    finally:
        server.stop()


def _squatter_user() -> str:
    name = "accelsquat"
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", name], check=True)
    return name


SQUAT = r"""
import os, re, socket, sys, time, threading
got = []
def serve(s):
    while True:
        c, _ = s.accept()
        c.settimeout(2)
        try:
            got.append(c.recv(65536).decode(errors="replace"))
        except OSError:
            pass
        c.close()
deadline = time.time() + float(sys.argv[1])
bound = set()
while time.time() < deadline:   # watch /proc for a gateway's --port=N and take N first
    for pid in os.listdir("/proc"):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if sys.argv[2] not in cmd:  # only this test's gateway (others run tests here too)
            continue
        for port in re.findall(r"accel_gateway.*--port=(\d+)", cmd):
            if port not in bound:
                bound.add(port)
                s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", int(port))); s.listen(16)
                    threading.Thread(target=serve, args=(s,), daemon=True).start()
                except OSError:
                    pass
    time.sleep(0.002)
print("TOKENS" if any("token" in g.lower() for g in got) else "NOTHING", bound, flush=True)
"""


def test_embedded_gateway_has_no_port_to_squat(tmp_path):
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("needs root and useradd to act as another local user")
    # The other user runs a system Python (this one may sit in a folder only root can read).
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 for the other user")
    user = _squatter_user()
    squat = subprocess.Popen(  # the script on the command line: tmp folders are 0700
        ["runuser", "-u", user, "--", python, "-c", SQUAT, "25", str(tmp_path / "srv")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        server = start_server(tmp_path / "srv", f"--AccelState.state_dir={tmp_path / 'state'}")
        try:
            s = start_session(server, "accel--local--python3", "sq.ipynb")
            with KernelClient(server.url, s["kernel"]["id"], server.token) as kc:
                assert kc.eval("2") == "2"
            gw = [
                p
                for p in psutil.Process(server.pid).children()
                if "accel_gateway" in " ".join(p.cmdline())
            ]
            assert gw and not any("--port" in a for a in gw[0].cmdline())
            sock = [a.split("=", 1)[1] for a in gw[0].cmdline() if a.startswith("--sock=")][0]
            folder = os.path.dirname(sock)
            assert os.stat(folder).st_mode & 0o077 == 0, "socket folder private to this user"
            probe = subprocess.run(
                [
                    "runuser",
                    "-u",
                    user,
                    "--",
                    python,
                    "-c",
                    f"import socket; s=socket.socket(socket.AF_UNIX); s.connect({sock!r})",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert probe.returncode != 0 and "Permission" in probe.stderr
        finally:
            server.stop()
        out, _ = squat.communicate(timeout=40)
        assert out.startswith("NOTHING"), out
    finally:
        if squat.poll() is None:
            squat.kill()
