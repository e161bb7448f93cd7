"""Nobody let in: every handler registered by the server extension and by the gateway, found by
enumerating the real apps' URL rules (tests/security/routes.py), refuses an unauthenticated request
(no token, no cookie) for every HTTP method it implements and for websockets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import requests
import websocket

from tests.support.procs import REPO, free_port

SAMPLES = {
    "kernel_id": str(uuid.uuid4()),
    "session_id": str(uuid.uuid4()),
    "mount_id": "0123456789ab",
    "upload_id": "0" * 32,
    "name": "a",
    "rest": "contents/x.txt",
    "path": "/x.txt",
    "section_name": "x",
    "checkpoint_id": "x",
    "action": "restart",
    "kernel_name": "python3",
    "format": "html",
    "rid": "0123456789abcdef",
    "term": "1",
}
# jupyter_server's own public pages (@allow_unauthenticated): static files, login/logout, the API
# version, redirects, the static landing page "/". They may answer; nothing of ours may be among
# them. (/metrics, Prometheus, is checked: it must refuse.)
STOCK_PUBLIC = (
    "FileFindHandler",
    "PublicStaticFileHandler",
    "LoginFormHandler",
    "LogoutHandler",
    "APIVersionHandler",
    "TrailingSlashHandler",
    "NotebooksRedirectHandler",
    "MainHandler",
    "Template404",
    "RedirectHandler",
)
OURS = ("accel_gateway", "jupyterlab_accel")
# Stock server routes whose managers/connection classes are ours (routing, relay).
SERVER_ROUTED = re.compile(r"^/api/(kernels|sessions|kernelspecs)")


def _close(pattern: str, i: int) -> int:
    depth, j = 0, i
    while j < len(pattern):
        c = pattern[j]
        if c == "\\":
            j += 2
            continue
        if c == "[":
            j = pattern.index("]", j + 1) + 1
            continue
        depth += c == "("
        depth -= c == ")"
        if depth == 0:
            return j
        j += 1
    raise ValueError(pattern)


def example_path(pattern: str) -> str | None:
    """A concrete path the pattern matches, with plausible values for named groups."""
    pattern = pattern.rstrip("$")
    for unnamed in ("", "x", "/x"):
        out, i = [], 0
        while i < len(pattern):
            c = pattern[i]
            if c == "(":
                j = _close(pattern, i)
                m = re.match(r"\(\?P<(\w+)>", pattern[i:])
                if m:
                    body = pattern[i + m.end() : j]
                    options = [SAMPLES.get(m.group(1), "x"), "x", "/x", "contents/x"]
                    out.append(next((o for o in options if re.fullmatch(body, o)), "x"))
                else:
                    out.append(unnamed)
                i = j + 1
                if i < len(pattern) and pattern[i] in "?*+":
                    i += 1
                continue
            if c == "\\":
                out.append(pattern[i + 1])
                i += 2
                continue
            if pattern.startswith(".*", i):
                out.append("x")
                i += 2
                continue
            if c in "?^":
                i += 1
                continue
            out.append(c)
            i += 1
        path = "".join(out)
        if re.fullmatch(pattern, path):
            return path
    return None


def routes(kind: str, argv: list[str], env: dict | None = None) -> list[dict]:
    r = subprocess.run(
        [sys.executable, "-m", "tests.security.routes", kind, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    found = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert found, r.stderr[-3000:]
    return found


def refused(status: int, headers) -> bool:
    if status in (401, 403):
        return True
    return status in (301, 302, 303, 307) and "login" in headers.get("Location", "")


def walk(base_url: str, found: list[dict], keep) -> list[str]:
    """Request every kept route without credentials; return what was let in."""
    problems, checked = [], 0
    for route in found:
        if not keep(route):
            continue
        cls = route["handler"].rsplit(":", 1)[1]
        ours = route["handler"].startswith(OURS)
        path = example_path(route["pattern"])
        if path is None:
            if ours:
                problems.append(f"no example URL for {route}")
            continue
        if ours and set(route["public"]) - {"OPTIONS"}:
            problems.append(f"{route['handler']} marks {route['public']} public")
        if route["websocket"]:
            try:
                ws = websocket.create_connection(
                    base_url.replace("http", "ws", 1) + path, timeout=10
                )
                ws.close()
                problems.append(f"websocket {path} ({cls}) accepted without credentials")
            except websocket.WebSocketBadStatusException as e:
                if e.status_code not in (401, 403):
                    problems.append(f"websocket {path} ({cls}): {e.status_code}")
            checked += 1
            continue
        for method in route["methods"]:
            if method in route["public"] and (method == "OPTIONS" or cls in STOCK_PUBLIC):
                continue  # CORS preflight and jupyter_server's public pages
            r = requests.request(
                method,
                base_url + path,
                allow_redirects=False,
                timeout=15,
                data=b"{}" if method in ("POST", "PUT", "PATCH") else None,
            )
            checked += 1
            if not refused(r.status_code, r.headers):
                problems.append(f"{method} {path} ({cls}): {r.status_code} {r.text[:120]}")
    assert checked >= 10, f"only {checked} requests made: enumeration found too little"
    return problems


def test_every_gateway_handler_refuses_unauthenticated(sec_env, tmp_path):
    gw = sec_env["gw"]
    (tmp_path / "ws").mkdir()
    found = routes(
        "gateway",
        ["--ip=127.0.0.1", f"--port={free_port()}", f"--workspace={tmp_path / 'ws'}"],
        env={**os.environ, "JUPYTER_TOKEN": "enumeration-only"},
    )
    accel = [r for r in found if r["handler"].startswith("accel_gateway")]
    assert any(r["websocket"] for r in accel) and any("/mounts" in r["pattern"] for r in accel)
    problems = walk(gw.url, found, keep=lambda r: True)  # the whole gateway
    assert not problems, "\n".join(problems)


def test_every_server_extension_handler_refuses_unauthenticated(sec_env, tmp_path):
    server = sec_env["server"]
    cfg = sec_env["tmp"] / "server" / "accel_config.json"
    found = routes(
        "server",
        [
            "--ip=127.0.0.1",
            f"--port={free_port()}",
            f"--config={cfg}",
            # its own state folder: the running server holds the lock on the configured one
            f"--AccelState.state_dir={tmp_path / 'state'}",
            f"--ServerApp.root_dir={tmp_path}",
            "--ServerApp.allow_root=True",
        ],
    )
    ours = [r for r in found if r["handler"].startswith("jupyterlab_accel")]
    assert len(ours) >= 8 and any(r["websocket"] for r in ours), ours
    problems = walk(
        server.url,
        found,
        keep=lambda r: (
            r["handler"].startswith("jupyterlab_accel") or SERVER_ROUTED.match(r["pattern"])
        ),
    )
    assert not problems, "\n".join(problems)
    # and with a wrong token or a forged cookie: still refused
    for headers in ({"Authorization": "token wrong"}, {"Cookie": "username-127-0-0-1=forged"}):
        r = requests.get(server.url + "/accel/runtimes", headers=headers, timeout=10)
        assert r.status_code in (401, 403), r.text
