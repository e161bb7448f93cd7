"""Handler error paths, in process (pytest-jupyter's jp_fetch): each bad request gets a 4xx with
a JSON message naming what was wrong, never a 500. No runtime is reachable here: the registry
holds one configured runtime on a closed port, so nothing upstream is ever contacted."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

pytest_plugins = ("pytest_jupyter.jupyter_server",)

DEAD = "http://127.0.0.1:9"  # discard port: nothing listens


@pytest.fixture
def jp_server_config(tmp_path):
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyterlab_accel": True},
            "allow_root": True,
        },
        "AccelState": {"state_dir": str(tmp_path / "state")},
        "EmbeddedGateway": {"enabled": False},
        "RuntimeRegistry": {"runtimes": [{"name": "dead", "url": DEAD, "token": "t"}]},
    }


async def fails(jp_fetch, *path, **kw) -> tuple[int, dict]:
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch(*path, **kw)
    body = json.loads(e.value.response.body or b"{}")
    return e.value.code, body


async def test_unknown_runtime_is_404(jp_fetch):
    code, body = await fails(jp_fetch, "accel", "runtimes", "nope")
    assert code == 404 and "nope" in body["message"]


async def test_bad_runtime_bodies_are_400(jp_fetch):
    for payload, word in [
        ("{not json", "JSON"),
        (json.dumps({"name": "x", "url": "http://[::1", "token": "t"}), "url"),
        (json.dumps({"name": "x", "url": "http://h:99999", "token": "t"}), "port"),
        (
            json.dumps({"name": "x", "url": "http://h:1", "token": "t", "price_per_hour": "nan"}),
            "price",
        ),
        (json.dumps({"name": "Bad Name", "url": "http://h:1", "token": "t"}), "name"),
    ]:
        code, body = await fails(jp_fetch, "accel", "runtimes", method="POST", body=payload)
        assert code == 400, (payload, body)
        assert word.lower() in body["message"].lower(), (payload, body)


async def test_unknown_kernel_paths_are_404(jp_fetch):
    kid = "00000000-0000-0000-0000-000000000000"
    for path in (("journal",), ("filesync",), ("keepalive",)):
        method = "POST" if path == ("keepalive",) else "GET"
        kw = {"body": b"{}"} if method == "POST" else {}
        code, body = await fails(jp_fetch, "accel", "kernels", kid, *path, method=method, **kw)
        assert code == 404, (path, body)
        assert body.get("message"), (path, body)


async def test_unknown_kernelspec_session_is_404(jp_fetch):
    for name in ("accel--nope--python3", "accel--dead--no-such-spec"):
        payload = json.dumps({"path": "a.ipynb", "type": "notebook", "kernel": {"name": name}})
        code, body = await fails(jp_fetch, "api", "sessions", method="POST", body=payload)
        assert code in (404, 503), (name, code, body)
        assert body.get("message") and code != 500


async def test_a_dead_runtime_answers_503_not_500(jp_fetch):
    code, body = await fails(
        jp_fetch, "accel", "runtimes", "dead", "api", "terminals", method="POST", body=b"{}"
    )
    assert code == 503 and "dead" in body["message"], body
    code, body = await fails(jp_fetch, "accel", "runtimes", "dead", "contents", "x.txt")
    assert code in (502, 503) and body.get("message"), (code, body)


def test_mounts_proxy_drops_jupyterlabs_cache_buster_only():
    from tornado import web

    from jupyterlab_accel.handlers.proxy import mounts_upstream_path

    # ServerConnection.makeRequest appends "?<timestamp>" to GETs; it is not forwarded
    assert mounts_upstream_path("GET", "/remotes", "1764580000000") == "/api/accel/mounts/remotes"
    assert mounts_upstream_path("GET", "", "token=abc&1764580000000") == "/api/accel/mounts"
    with pytest.raises(web.HTTPError) as e:
        mounts_upstream_path("GET", "", "x=1")
    assert e.value.status_code == 400
