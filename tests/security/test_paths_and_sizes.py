"""Path traversal on the contents/files proxies and on mount points is refused; oversized
request bodies get 413 with a message (limits: docs/openapi.yaml)."""

from __future__ import annotations

import http.client
import json
import socket
from urllib.parse import urlsplit

import pytest
import requests

MiB = 1 << 20
SECRET_FILE_TEXT = "outside-the-workspace-"


def raw_request(
    url: str, method: str, path: str, headers: dict, body: bytes = b""
) -> tuple[int, bytes]:
    """http.client sends the path exactly as given (no dot-segment normalisation)."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


@pytest.fixture(scope="module")
def outside(sec_env):
    """A file next to (outside) the gateway's workspace, that traversal would reach."""
    ws = sec_env["gw"].root
    f = ws.parent / "secret.txt"
    f.write_text(SECRET_FILE_TEXT + "x")
    (ws / "inside.txt").write_text("inside")
    return f


TRAVERSALS = [
    "../secret.txt",
    "../../etc/passwd",
    "..%2Fsecret.txt",
    "..%2f..%2fetc%2fpasswd",
    "%2e%2e/secret.txt",
    "%2E%2E%2Fsecret.txt",
    "%252e%252e%252fsecret.txt",
    "./../secret.txt",
    "sub/../../secret.txt",
    "..\\secret.txt",
    "..%5csecret.txt",
    "%2e%2e%5csecret.txt",
    "/../secret.txt",
    "//etc/passwd",
    "%2fetc%2fpasswd",
]


@pytest.mark.parametrize("kind", ["contents", "files"])
def test_traversal_on_server_proxies(sec_env, outside, kind):
    server = sec_env["server"]
    ok, body = raw_request(
        server.url, "GET", f"/accel/runtimes/a/{kind}/inside.txt", server.headers
    )
    assert ok == 200 and b"inside" in body  # the proxy works for a plain path
    for t in TRAVERSALS:
        for method in ("GET", "DELETE") if kind == "contents" else ("GET",):
            status, body = raw_request(
                server.url, method, f"/accel/runtimes/a/{kind}/{t}", server.headers
            )
            assert status in (400, 403, 404), (t, method, status, body[:300])
            assert SECRET_FILE_TEXT.encode() not in body and b"root:" not in body, (t, body[:300])
            assert body.strip(), (t, method, status)  # says why (the runtime's own message)
    assert outside.exists(), "a traversal DELETE removed a file outside the workspace"


def test_traversal_on_gateway_contents(sec_env, outside):
    gw = sec_env["gw"]
    for t in TRAVERSALS:
        for prefix in ("/api/contents/", "/files/"):
            status, body = raw_request(gw.url, "GET", prefix + t, gw.headers)
            assert status in (400, 403, 404), (prefix + t, status, body[:300])
            assert SECRET_FILE_TEXT.encode() not in body and b"root:" not in body


@pytest.mark.parametrize(
    "mount_point",
    [
        "../escape",
        "../../etc",
        "drive/../../escape",
        "/etc",
        "/tmp",
        ".",
        "link-out/x",
        "link-out",
        "drive/../../../escape",
    ],
)
def test_mount_point_traversal_refused(sec_env, tmp_path, mount_point):
    gw, server = sec_env["gw"], sec_env["server"]
    link = gw.root / "link-out"
    if not link.exists():
        link.symlink_to(tmp_path)  # a symlink inside the workspace pointing out of it
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    body = {"source": str(src), "mount_point": mount_point, "mode": "sync", "timeout": 10}
    for proc, path in ((gw, "/api/accel/mounts"), (server, "/accel/runtimes/a/mounts")):
        r = proc.api("POST", path, json=body)
        assert r.status_code == 400, (mount_point, path, r.status_code, r.text)
        assert r.json()["reason"] == "bad_mount_point" and r.json()["message"], r.text
    assert gw.api("GET", "/api/accel/mounts").json() == []


def test_oversized_json_bodies_get_413(sec_env):
    gw, server = sec_env["gw"], sec_env["server"]
    big = json.dumps({"name": "x", "pad": "x" * (2 * MiB)}).encode()
    cases = [
        (server, "POST", "/accel/runtimes"),
        (server, "POST", "/accel/runtimes/a/mounts"),
        (server, "POST", "/accel/kernels/00000000-0000-0000-0000-000000000000/keepalive"),
        (gw, "POST", "/api/accel/mounts"),
        (gw, "POST", "/api/kernels"),
        (gw, "POST", "/api/accel/kernels/00000000-0000-0000-0000-000000000000/keepalive"),
    ]
    for proc, method, path in cases:
        status, body = raw_request(
            proc.url, method, path, {**proc.headers, "Content-Type": "application/json"}, big
        )
        assert status == 413, (path, status, body[:300])
        assert "limit" in json.loads(body)["message"], body[:300]
    # just under the limit is not refused for its size
    r = server.api("POST", "/accel/runtimes", json={"name": "x" * 10, "pad": "y" * (MiB - 100)})
    assert r.status_code == 400 and "unknown keys" in r.json()["message"], r.text


def test_oversized_contents_upload_gets_413_before_the_body(sec_env):
    """The proxy refuses a declared 300 MiB body at once, without reading it."""
    server = sec_env["server"]
    u = urlsplit(server.url)
    with socket.create_connection((u.hostname, u.port), timeout=15) as s:
        s.sendall(
            (
                f"PUT /accel/runtimes/a/contents/big.ipynb HTTP/1.1\r\nHost: {u.netloc}\r\n"
                f"Authorization: token {server.token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {300 * MiB}\r\n\r\n"
            ).encode()
            + b'{"type": "file", '
        )
        head = s.recv(65536).decode(errors="replace")
    assert head.startswith("HTTP/1.1 413"), head[:500]
    assert "over the" in head and "limit" in head, head[-500:]
    assert not (sec_env["gw"].root / "big.ipynb").exists()
    # a normal save through the same proxy still works
    r = server.api(
        "PUT",
        "/accel/runtimes/a/contents/small.txt",
        json={"type": "file", "format": "text", "content": "hi"},
    )
    assert r.status_code in (200, 201), r.text


def test_mounts_proxy_stays_under_mounts(sec_env):
    """/accel/runtimes/a/mounts/<rest> never reaches another gateway route."""
    server = sec_env["server"]
    for rest in (
        "/../../kernels",
        "/..%2f..%2fkernels",
        "/%2e%2e/%2e%2e/kernels",
        "/../runtime",
        "/..%2F..%2F..%2Fapi%2Fkernels",
        "/remotes/../../kernels",
    ):
        status, body = raw_request(
            server.url, "GET", "/accel/runtimes/a/mounts" + rest, server.headers
        )
        assert status in (400, 403, 404), (rest, status, body[:300])
        assert b"execution_state" not in body and b"cpu_count" not in body, (rest, body[:300])


def test_chunked_upload_past_the_cap_is_cut_off(sec_env):
    """Without a Content-Length the cap is enforced as the body arrives; nothing reaches the runtime."""
    server = sec_env["server"]

    def body():
        yield b'{"type": "file", "format": "text", "content": "'
        for _ in range(260):
            yield b"x" * MiB
        yield b'"}'

    try:
        r = requests.put(
            server.url + "/accel/runtimes/a/contents/chunked.txt",
            data=body(),
            headers={**server.headers, "Content-Type": "application/json"},
            timeout=60,
        )
        assert r.status_code in (400, 413), r.text[:300]
    except requests.ConnectionError:
        pass  # the server closed the connection while the body was still being sent
    assert server.proc.poll() is None
    assert not (sec_env["gw"].root / "chunked.txt").exists()
    assert server.api("GET", "/accel/runtimes/a").status_code == 200
