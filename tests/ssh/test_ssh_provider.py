"""SSH host runtimes against a real sshd: install over SSH, host keys, link drops, delete,
clear errors. One jupyter_server with jupyterlab_accel for the module; the host is this machine
as the test user (tests/ssh/conftest.py)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.server.conftest import server_with, start_session
from tests.ssh.conftest import (
    fingerprint,
    fresh_install,
    gateway_processes,
    kill_ssh_sessions,
)
from tests.support.kernel_ws import KernelClient
from tests.support.procs import start_server

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def lab(ssh_host, tmp_path_factory):
    d = tmp_path_factory.mktemp("lab")
    known_hosts = d / "known_hosts"
    known_hosts.write_text((ssh_host.dir / "known_hosts_lines").read_text())
    extra = {
        "SSHProvider": {
            "ssh_config": [str(ssh_host.ssh_config)],
            "known_hosts": str(known_hosts),
            "keepalive_interval": 2.0,
        }
    }
    server = server_with(d, [], extra=extra)
    server.extra["known_hosts"] = known_hosts
    yield server
    for rt in server.api("GET", "/accel/runtimes").json():
        if rt.get("provider"):
            server.api("DELETE", f"/accel/providers/ssh/{rt['name']}")
    server.stop()


def add(lab, name, host, wait=20, **body):
    r = lab.api(
        "POST", f"/accel/providers/ssh?wait={wait}", json={"name": name, "host": host, **body}
    )
    assert r.status_code == 202, r.text
    return r.json()


def provider(lab, name) -> dict:
    r = lab.api("GET", f"/accel/runtimes/{name}")
    assert r.status_code == 200, r.text
    return r.json()["provider"]


def wait_provider(lab, name, states=("ready", "stopped"), timeout=180) -> dict:
    deadline = time.monotonic() + timeout
    seen = set()
    while time.monotonic() < deadline:
        p = provider(lab, name)
        seen.add(p["step"])
        if p["state"] in states:
            p["steps_seen"] = seen
            return p
        time.sleep(0.2)
    raise TimeoutError(f"{name}: still {p}")


def kernel_name_on(lab, runtime) -> str:
    specs = lab.api("GET", "/api/kernelspecs").json()["kernelspecs"]
    names = [n for n in specs if n.startswith(f"accel--{runtime}--")]
    assert names, sorted(specs)
    return names[0]


@pytest.fixture(scope="module")
def box(lab, ssh_host):
    """First connect by alias: unknown host key shown, refused until accepted, then the gateway
    is installed over SSH and started. Records what was seen on the way."""
    fresh_install(ssh_host)
    seen = {}
    t0 = time.monotonic()
    first = add(lab, "box", "gpu-box")["provider"]
    seen["first"] = first
    seen["known_hosts_before"] = lab.extra["known_hosts"].read_text()
    r = lab.api(
        "POST",
        "/accel/providers/ssh/box/connect",
        json={"accept_fingerprint": "SHA256:not-the-key"},
    )
    seen["wrong_accept"] = r.status_code
    r = lab.api(
        "POST",
        "/accel/providers/ssh/box/connect",
        json={"accept_fingerprint": first["details"].get("fingerprint")},
    )
    assert r.status_code == 202, r.text
    ready = wait_provider(lab, "box")
    assert ready["state"] == "ready", ready
    kname = kernel_name_on(lab, "box")
    sess = start_session(lab, kname, "ssh.ipynb")
    with KernelClient(lab.url, sess["kernel"]["id"], lab.token) as kc:
        uid = kc.eval("import os; os.getuid()")
    seen.update(ready=ready, session=sess, uid=uid, first_cell_s=time.monotonic() - t0)
    return seen


def test_unknown_host_key_is_refused_until_accepted(box, ssh_host, lab):
    first = box["first"]
    assert first["state"] == "stopped" and first["reason"] == "host_key_unknown", first
    expected = fingerprint(ssh_host.host_key_pub)
    assert first["details"]["fingerprint"] == expected
    assert expected in first["message"]
    assert f"{ssh_host.port}" not in box["known_hosts_before"]  # never trusted silently
    assert box["wrong_accept"] == 409
    # accepted: the key is now in known_hosts
    assert ssh_host.known_hosts_line() in lab.extra["known_hosts"].read_text()


def test_first_connect_installs_and_cell_runs_as_the_host_user(box, ssh_host):
    assert "installing" in box["ready"]["steps_seen"]
    assert (ssh_host.home / ".cache/jupyterlab-accel/venv/bin/python").exists()
    assert int(box["uid"]) == ssh_host.user.pw_uid
    gw = [p for p in gateway_processes() if "accel_gateway" in " ".join(p.info["cmdline"])]
    assert gw, "the gateway runs as the test user"


def stored_token(lab, name) -> str:
    rts = json.loads((lab.root.parent / "state" / "runtimes.json").read_text())
    return [r for r in rts if r.get("provider", {}).get("name") == name][0]["provider"]["token"]


def test_gateway_token_on_no_command_line_or_environment(box, lab):
    token = stored_token(lab, "box")
    assert token
    procs = gateway_processes()  # the gateway and its kernel, as the test user
    assert len(procs) >= 2
    for p in procs:
        assert token not in " ".join(p.cmdline())
        assert token not in json.dumps(p.environ())


def test_listing_never_shows_the_gateway_token(box, lab):
    text = lab.api("GET", "/accel/runtimes").text
    rt = [r for r in lab.api("GET", "/accel/runtimes").json() if r["name"] == "box"][0]
    assert rt["healthy"] and rt["provider"]["kind"] == "ssh"
    assert rt["url"].startswith("http://127.0.0.1:")
    token = stored_token(lab, "box")
    assert token and token not in text


def test_link_killed_mid_cell_output_whole_after_reconnect(box, lab):
    kid = box["session"]["kernel"]["id"]
    code = "import time\nfor i in range(10):\n    print(i, flush=True)\n    time.sleep(0.4)\n"
    result = {}
    with KernelClient(lab.url, kid, lab.token, timeout=60) as kc:
        th = threading.Thread(target=lambda: result.update(kc.execute(code, timeout=90)))
        th.start()
        time.sleep(1.2)
        assert kill_ssh_sessions() >= 1
        th.join(100)
    assert result.get("reply", {}).get("status") == "ok", result.get("reply")
    assert result["stdout"] == "".join(f"{i}\n" for i in range(10))
    p = wait_provider(lab, "box", states=("ready",), timeout=30)
    assert p["state"] == "ready"


def test_server_restart_reattaches_to_the_running_kernel(box, lab):
    kid = box["session"]["kernel"]["id"]
    with KernelClient(lab.url, kid, lab.token) as kc:
        assert kc.execute("survivor = 6 * 7")["reply"]["status"] == "ok"
    lab.proc.terminate()  # the server goes; the gateway and its kernel stay on the host
    lab.proc.wait(30)
    cfg = lab.root.parent / "accel_config.json"
    new = start_server(lab.root.parent, f"--config={cfg}", token=lab.token, port=lab.port)
    lab.proc = new.proc
    p = wait_provider(lab, "box", states=("ready",), timeout=30)
    assert p["state"] == "ready" and p["details"]["reattached"], p
    with KernelClient(lab.url, kid, lab.token) as kc:
        assert kc.eval("survivor") == "42"


def test_second_connect_reuses_the_install(box, lab, ssh_host):
    t0 = time.monotonic()
    body = add(lab, "box2", "gpu-box", wait=60)
    p = wait_provider(lab, "box2", timeout=60)
    assert p["state"] == "ready", p
    assert "installing" not in p["steps_seen"] and body["provider"]["step"] != "installing"
    sess = start_session(lab, kernel_name_on(lab, "box2"), "ssh2.ipynb")
    with KernelClient(lab.url, sess["kernel"]["id"], lab.token) as kc:
        assert kc.execute("print(6 * 7)")["stdout"] == "42\n"
    box["second_cell_s"] = time.monotonic() - t0
    print(
        f"connect -> first cell: first {box['first_cell_s']:.1f} s, later "
        f"{box['second_cell_s']:.1f} s"
    )


def test_delete_stops_the_remote_gateway(box, lab):
    def mine(name):
        r = lab.api("GET", "/accel/runtimes").json()
        return [x for x in r if x["name"] == name]

    def gateways():
        return [p for p in gateway_processes() if "accel_gateway" in " ".join(p.cmdline())]

    assert len(gateways()) == 2
    # the generic Disconnect and delete (DELETE /accel/runtimes/{name}) stops it too
    r = lab.api("DELETE", "/accel/runtimes/box2")
    assert r.status_code == 204, r.text
    assert not mine("box2")
    assert len(gateways()) == 1
    r = lab.api("DELETE", "/accel/providers/ssh/box")
    assert r.status_code == 204, r.text
    deadline = time.monotonic() + 10
    while gateway_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not gateway_processes(), [p.info["cmdline"] for p in gateway_processes()]


def test_changed_host_key_is_refused_with_a_warning(lab):
    t0 = time.monotonic()
    p = add(lab, "changed", "changed-box", wait=10)["provider"]
    assert time.monotonic() - t0 < 10
    assert p["state"] == "stopped" and p["reason"] == "host_key_changed", p
    assert "CHANGED" in p["message"]
    assert lab.api("DELETE", "/accel/providers/ssh/changed").status_code in (200, 204)


@pytest.mark.parametrize(
    "host, body, reason",
    [
        ("nowhere", {}, "host_unreachable"),
        ("stranger-box", {}, "auth_refused"),
        ("known-box", {"python": "/nonexistent/python3"}, "no_python"),
    ],
)
def test_clear_error_within_10_s(lab, host, body, reason):
    name = f"err-{reason.replace('_', '-')}"
    t0 = time.monotonic()
    p = add(lab, name, host, wait=10, **body)["provider"]
    took = time.monotonic() - t0
    assert p["state"] == "stopped" and p["reason"] == reason, p
    assert took < 10, took
    assert p["step"] in ("connecting", "checking") and p["message"]
    assert lab.api("DELETE", f"/accel/providers/ssh/{name}").status_code in (200, 204)


def test_bad_requests_are_400(lab):
    for body in (
        {"name": "Bad Name", "host": "gpu-box"},
        {"name": "hosts", "host": "gpu-box"},
        {"name": "x", "host": "-oProxy=evil"},
        {"name": "x"},
        {"name": "x", "host": "gpu-box", "extra": 1},
        [1],
    ):
        r = lab.api("POST", "/accel/providers/ssh", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["message"]
    assert lab.api("POST", "/accel/providers/ssh/none/connect", json={}).status_code == 404
