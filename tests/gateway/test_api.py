"""The standard API and /api/accel on a host without accelerators: contents, errors, runtime."""

import requests

from tests.support.kernel_ws import KernelClient


def test_contents_rooted_at_workspace(gateway):
    body = {"type": "file", "format": "text", "content": "hello from the test\n"}
    r = gateway.api("PUT", "/api/contents/notes.txt", json=body)
    assert r.status_code in (200, 201), r.text
    assert (gateway.root / "notes.txt").read_text() == "hello from the test\n"
    (gateway.root / "data.csv").write_text("a,b\n1,2\n")
    r = gateway.api("GET", "/api/contents/data.csv", params={"content": 1, "format": "text"})
    assert r.status_code == 200 and r.json()["content"] == "a,b\n1,2\n"
    names = {m["name"] for m in gateway.api("GET", "/api/contents").json()["content"]}
    assert {"notes.txt", "data.csv"} <= names
    assert gateway.api("GET", "/api/contents/..%2F..%2Fetc%2Fpasswd").status_code in (400, 404)


def test_errors_are_json_with_message(gateway):
    missing = "00000000-0000-0000-0000-000000000000"
    for method, path in [
        ("GET", f"/api/kernels/{missing}"),
        ("POST", f"/api/accel/kernels/{missing}/keepalive"),
    ]:
        r = gateway.api(method, path)
        assert r.status_code == 404, (path, r.text)
        assert missing in r.json()["message"]
    r = gateway.api("POST", "/api/kernels", data="{not json")
    assert r.status_code == 400 and "JSON" in r.json()["message"]
    r = gateway.api(
        "POST", "/api/kernels", json={"name": "python3", "env": {"KERNEL_ACCEL_DEVICES": "two"}}
    )
    assert r.status_code == 400 and "KERNEL_ACCEL_DEVICES" in r.json()["message"]
    assert r.json()["reason"] == "bad_request"
    r = gateway.api("POST", "/api/kernels", json={"name": "python3", "env": ["x"]})
    assert r.status_code == 400 and "env" in r.json()["message"]
    assert gateway.api("GET", "/api/kernels").json() == []


def test_accel_endpoints_need_token(gateway):
    for path in ("/api/accel/runtime", "/api/accel/metrics", "/api/accel/kernels"):
        assert requests.get(gateway.url + path, timeout=10).status_code in (401, 403)
        bad = {"Authorization": "token wrong"}
        assert requests.get(gateway.url + path, headers=bad, timeout=10).status_code in (401, 403)
    import websocket

    try:
        websocket.create_connection(
            gateway.url.replace("http", "ws") + "/api/accel/metrics/stream", timeout=10
        )
        raise AssertionError("metrics stream accepted a client without a token")
    except websocket.WebSocketBadStatusException as e:
        assert e.status_code in (401, 403)


def test_runtime_without_accelerators(gateway):
    info = gateway.api("GET", "/api/accel/runtime").json()
    assert info["accelerator"] == "none" and info["devices"] == []
    assert info["shape"] in ("standard", "highmem")
    assert info["cpu_count"] >= 1 and info["memory_total"] > 0 and info["disk_total"] > 0
    assert info["workspace"] == str(gateway.root)
    assert info["limits"]["idle_timeout"] == 5400 and info["limits"]["max_lifetime"] == 43200
    assert info["limits"]["devices_per_kernel"] == 0
    assert {"runtime", "metrics", "kernels"} <= set(info["features"])
    assert "mounts" not in info["features"] or "mounts" in _registered_setups()
    # A kernel (here through the sessions API) still starts, sees no GPU variables, no devices.
    r = gateway.api(
        "POST",
        "/api/sessions",
        json={"path": "a.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
    )
    assert r.status_code == 201, r.text
    kid = r.json()["kernel"]["id"]
    with KernelClient(gateway.url, kid, gateway.token) as kc:
        assert kc.eval("repr(__import__('os').environ.get('CUDA_VISIBLE_DEVICES'))") == "'None'"
        # The gateway's token does not leak into kernels.
        assert kc.eval("'JUPYTER_TOKEN' in __import__('os').environ") == "False"
    [k] = gateway.api("GET", "/api/accel/kernels").json()
    assert k["id"] == kid and k["devices"] == [] and k["expiry_reason"] == "idle"
    r = gateway.api("POST", "/api/kernels", json={"env": {"KERNEL_ACCEL_DEVICES": "1"}})
    assert r.status_code == 503 and r.json()["reason"] == "no_free_device"


def _registered_setups():
    from accel_gateway.extension import FEATURE_SETUPS

    return " ".join(FEATURE_SETUPS)


def test_start_makes_a_missing_kernel_folder_inside_the_workspace(gateway):
    # File sync sends the folder while the kernel boots: the kernel must start in it, not in
    # the nearest folder that exists yet. Without `make_path` (stock clients, which send a
    # notebook's path) stock's rule stays: tests/gateway/test_smoke.py.
    body = {"name": "python3", "path": "proj/nb-folder", "make_path": True}
    r = gateway.api("POST", "/api/kernels", json=body)
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    try:
        with KernelClient(gateway.url, kid, gateway.token) as kc:
            cwd = kc.eval("__import__('os').getcwd()")
        assert cwd.strip("'") == str((gateway.root / "proj" / "nb-folder").resolve())
    finally:
        gateway.api("DELETE", f"/api/kernels/{kid}")
    outside = gateway.root.parent / "escaped-folder"
    body = {"name": "python3", "path": "../escaped-folder", "make_path": True}
    r = gateway.api("POST", "/api/kernels", json=body)
    if r.status_code == 201:
        gateway.api("DELETE", f"/api/kernels/{r.json()['id']}")
    assert not outside.exists(), "a start never makes a folder outside the workspace"
    r = gateway.api("POST", "/api/kernels", json={"name": "python3", "make_path": "yes"})
    assert r.status_code == 400 and "make_path" in r.json()["message"]
