"""JupyterLab's chunked uploads to a runtime, written behind by the server (uploads.py): a real
server, a real gateway on 127.0.0.1 behind a TCP proxy that can cut the link."""

from __future__ import annotations

import base64
import json
import os

import pytest
import requests

from tests.reliability.tcp_proxy import TcpProxy
from tests.server.conftest import server_with
from tests.support.procs import free_port, start_gateway
from tests.support.waiting import wait_for

CHUNK = 1024 * 1024  # JupyterLab's CHUNK_SIZE


@pytest.fixture
def up_env(tmp_path):
    gw = start_gateway(tmp_path / "gw")
    proxy = TcpProxy(gw.port, free_port())
    server = None
    try:
        server = server_with(
            tmp_path / "server", [{"name": "a", "url": proxy.url, "token": gw.token}]
        )
        yield {"gw": gw, "server": server, "proxy": proxy}
    finally:
        if server is not None:
            server.stop()
        proxy.close()
        gw.stop()


def put_chunk(server, path: str, data: bytes, chunk: int, *, content=None) -> requests.Response:
    body = {
        "type": "file",
        "format": "base64",
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "content": base64.b64encode(data).decode() if content is None else content,
        "chunk": chunk,
    }
    return requests.put(
        f"{server.url}/accel/runtimes/a/contents/{path}",
        data=json.dumps(body),
        headers={**server.headers, "Content-Type": "application/json"},
        timeout=60,
    )


def pieces(data: bytes) -> list[tuple[int, bytes]]:
    """JupyterLab's numbering: 1, 2, ... and -1 for the last piece."""
    parts = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    return [(-1 if i == len(parts) else i, p) for i, p in enumerate(parts, 1)]


def leftovers(folder) -> list[str]:
    return [p.name for p in folder.iterdir() if ".accel-upload-" in p.name]


def test_chunks_are_answered_as_they_queue_and_the_file_lands_whole(up_env):
    server, gw = up_env["server"], up_env["gw"]
    data = os.urandom(3 * CHUNK + 12345)
    answers = []
    for n, part in pieces(data):
        r = put_chunk(server, "model.bin", part, n)
        assert r.status_code in (200, 201), r.text
        answers.append(r.json())
        if n == 2:  # written behind: the file appears whole, at the end, never partly
            assert not (gw.root / "model.bin").exists()
    assert [a["size"] for a in answers[:-1]] == [CHUNK, 2 * CHUNK, 3 * CHUNK]
    final = answers[-1]
    assert final["path"] == "model.bin" and final["type"] == "file"
    assert final["size"] == len(data) and final["content"] is None
    assert (gw.root / "model.bin").read_bytes() == data
    assert leftovers(gw.root) == []
    listed = server.api("GET", "/accel/runtimes/a/contents/model.bin", params={"content": 0})
    assert listed.status_code == 200 and listed.json()["size"] == len(data)


def test_an_overwrite_keeps_the_old_file_until_the_last_chunk(up_env):
    server, gw = up_env["server"], up_env["gw"]
    (gw.root / "data.csv").write_bytes(b"old,contents\n")
    new = os.urandom(2 * CHUNK + 7)
    parts = pieces(new)
    for n, part in parts[:-1]:
        assert put_chunk(server, "data.csv", part, n).status_code in (200, 201)
    assert (gw.root / "data.csv").read_bytes() == b"old,contents\n"
    n, part = parts[-1]
    assert put_chunk(server, "data.csv", part, n).status_code in (200, 201)
    assert (gw.root / "data.csv").read_bytes() == new


def test_bad_chunks_get_a_4xx_naming_what_was_wrong(up_env):
    server, gw = up_env["server"], up_env["gw"]
    r = put_chunk(server, "no/such/folder/x.bin", b"x" * 10, 1)
    assert r.status_code == 404 and "no/such/folder/x.bin" in r.json()["message"], r.text
    r = put_chunk(server, "late.bin", b"x" * 10, 3)
    assert r.status_code == 409 and "chunk 1 first" in r.json()["message"], r.text
    assert put_chunk(server, "gap.bin", b"x" * CHUNK, 1).status_code in (200, 201)
    r = put_chunk(server, "gap.bin", b"x" * CHUNK, 3)
    assert r.status_code == 400 and "after chunk 1" in r.json()["message"], r.text
    assert put_chunk(server, "b64.bin", b"x" * CHUNK, 1).status_code in (200, 201)
    r = put_chunk(server, "b64.bin", b"", 2, content="@@not base64@@")
    assert r.status_code == 400 and "not base64" in r.json()["message"], r.text
    r = put_chunk(server, ".hidden.bin", b"x", 1)
    assert r.status_code == 400 and "hidden" in r.json()["message"], r.text
    for name in ("gap.bin", "b64.bin", "late.bin", ".hidden.bin"):
        assert not (gw.root / name).exists(), name
    assert server.api("GET", "/accel/runtimes/a").status_code == 200
    # The refused uploads' hidden files go once their upload is dropped.
    wait_for(lambda: not leftovers(gw.root), 5, "no hidden upload files left")


def test_a_cut_link_fails_the_upload_and_loses_nothing(up_env):
    server, gw, proxy = up_env["server"], up_env["gw"], up_env["proxy"]
    (gw.root / "keep.bin").write_bytes(b"the old file\n")
    data = os.urandom(8 * CHUNK)
    parts = pieces(data)
    for n, part in parts[:2]:
        assert put_chunk(server, "keep.bin", part, n).status_code in (200, 201)
    proxy.cut()
    codes = []
    for n, part in parts[2:]:
        r = put_chunk(server, "keep.bin", part, n)
        codes.append(r.status_code)
        if r.status_code >= 300:
            assert r.status_code == 502 and "runtime 'a'" in r.json()["message"], r.text
            break
    assert codes and codes[-1] == 502, codes  # at the latest the last chunk says so
    proxy.restore()
    assert (gw.root / "keep.bin").read_bytes() == b"the old file\n"
    r = put_chunk(server, "keep.bin", b"again", 2)
    assert r.status_code == 409, r.text  # the failed upload is gone: start again at chunk 1
    again = os.urandom(CHUNK + 1)
    for n, part in pieces(again):
        assert put_chunk(server, "keep.bin", part, n).status_code in (200, 201)
    assert (gw.root / "keep.bin").read_bytes() == again
    assert leftovers(gw.root) == []
