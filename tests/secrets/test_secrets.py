"""Secrets read in a kernel through the server and a real gateway: granted per notebook, asked
for on the first read, revoked at once, and never recorded (saved notebook, journal, DEBUG
logs, command lines, the kernel's environment). A stock gateway: "not supported"."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from tests.server.conftest import server_with, start_session
from tests.support.kernel_ws import KernelClient
from tests.support.procs import start_gateway, start_stock_gateway

VALUE = "hf_" + secrets.token_hex(20)  # what must never be recorded
READ = (
    "import hashlib\n"
    "from accel_gateway import userdata\n"
    "try:\n"
    "    _v = userdata.get({name!r})\n"
    "    print('sha', hashlib.sha256(_v.encode()).hexdigest())\n"
    "except Exception as e:\n"
    "    print('refused', type(e).__name__, e)\n"
)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secrets")
    procs = []
    try:
        g = start_gateway(tmp / "g", "--debug")
        procs.append(g)
        stock = start_stock_gateway(tmp / "stock")
        procs.append(stock)
        runtimes = [
            {"name": "g", "url": g.url, "token": g.token},
            {"name": "stock", "url": stock.url, "token": stock.token},
        ]
        server = server_with(tmp / "server", runtimes, extra={"ServerApp": {"log_level": "DEBUG"}})
        procs.append(server)
        r = server.api("PUT", "/accel/secrets/HF_TOKEN", json={"value": VALUE})
        assert r.status_code == 201, r.text
        assert VALUE not in r.text
        deadline = time.monotonic() + 30
        while not server.api("GET", "/accel/runtimes/g/secrets").json().get("linked"):
            assert time.monotonic() < deadline, "the server never linked to the runtime"
            time.sleep(0.3)
        yield {"server": server, "g": g, "stock": stock, "tmp": tmp}
    finally:
        for p in reversed(procs):
            p.stop()


def read_secret(server, kc: KernelClient, name: str, decide: bool | None = None) -> str:
    """Run the read cell; when `decide` is given, answer the prompt it raises."""
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(kc.execute(READ.format(name=name), 60)))
    t.start()
    if decide is not None:
        deadline = time.monotonic() + 30
        while True:
            pending = server.api("GET", "/accel/secret-requests").json()
            if pending:
                break
            assert time.monotonic() < deadline, "no grant prompt appeared"
            time.sleep(0.2)
        (req,) = pending
        assert req["name"] == name and req["runtime"] == "g"
        r = server.api("POST", f"/accel/secret-requests/{req['id']}", json={"allow": decide})
        assert r.status_code == 204, r.text
    t.join(70)
    assert not server.api("GET", "/accel/secret-requests").json()
    return out["stdout"]


SHA = "sha " + hashlib.sha256(VALUE.encode()).hexdigest()


def test_grant_prompt_refusal_revoke_and_nothing_recorded(env):
    server, g = env["server"], env["g"]
    s = start_session(server, "accel--g--python3", "analysis.ipynb")
    kid = s["kernel"]["id"]
    other = start_session(server, "accel--g--python3", "other.ipynb")
    with KernelClient(server.url, kid, server.token) as kc:
        # first read: the user is asked, allows; the notebook is granted
        assert SHA in read_secret(server, kc, "HF_TOKEN", decide=True)
        listing = server.api("GET", "/accel/secrets").json()
        assert listing == [{"name": "HF_TOKEN", "notebooks": ["analysis.ipynb"]}]
        assert VALUE not in json.dumps(listing)
        # granted: no prompt
        assert SHA in read_secret(server, kc, "HF_TOKEN")
        # unknown name: a clear error, no prompt
        text = read_secret(server, kc, "NOPE")
        assert "refused SecretNotFoundError" in text and "NOPE" in text
        # revoking takes effect on the next read: asked again; denied -> refused
        r = server.api("DELETE", "/accel/secrets/HF_TOKEN/grants?path=analysis.ipynb")
        assert r.status_code == 200 and r.json()["notebooks"] == []
        text = read_secret(server, kc, "HF_TOKEN", decide=False)
        assert "refused NotebookAccessError" in text and "analysis.ipynb" in text
        saved_cells = [READ.format(name="HF_TOKEN")]
        saved_outputs = [text]
    # another notebook, never granted: denied
    with KernelClient(server.url, other["kernel"]["id"], server.token) as kc:
        assert "refused NotebookAccessError" in read_secret(server, kc, "HF_TOKEN", decide=False)
        # granted through the REST API: read without a prompt
        r = server.api("POST", "/accel/secrets/HF_TOKEN/grants", json={"path": "other.ipynb"})
        assert r.json()["notebooks"] == ["other.ipynb"]
        assert SHA in read_secret(server, kc, "HF_TOKEN")

    # the saved notebook holds the code and outputs, not the value
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {
                "cell_type": "code",
                "id": f"c{i}",
                "metadata": {},
                "source": src,
                "execution_count": i,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": out}],
            }
            for i, (src, out) in enumerate(zip(saved_cells, saved_outputs))
        ],
    }
    r = server.api("PUT", "/api/contents/analysis.ipynb", json={"type": "notebook", "content": nb})
    assert r.status_code in (200, 201), r.text
    assert VALUE not in (server.root / "analysis.ipynb").read_text()

    journal = server.api("GET", f"/accel/kernels/{kid}/journal")
    assert journal.status_code == 200 and SHA in journal.text
    assert VALUE not in journal.text

    time.sleep(0.5)  # let the logs flush
    assert "DEBUG" in server.logtext() and "DEBUG" in g.logtext()
    for log in (server.logtext(), g.logtext()):
        assert VALUE not in log
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        for what in ("cmdline", "environ"):
            try:
                data = (proc / what).read_bytes()
            except OSError:
                continue
            assert VALUE.encode() not in data, f"{what} of pid {proc.name}"

    # stored server-side only, mode 0600
    store = Path(env["tmp"]) / "server" / "state" / "secrets.json"
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600


def test_bad_input_is_a_clear_400(env):
    server = env["server"]
    r = server.api("PUT", "/accel/secrets/bad name", json={"value": "x"})
    assert r.status_code == 400 and "not valid" in r.json()["message"]
    r = server.api("PUT", "/accel/secrets/OK", json={"value": 5})
    assert r.status_code == 400 and "'value'" in r.json()["message"]
    r = server.api("POST", "/accel/secret-requests/abc123", json={"allow": "yes"})
    assert r.status_code == 400
    r = server.api("POST", "/accel/secret-requests/abc123", json={"allow": True})
    assert r.status_code == 404
    assert server.api("DELETE", "/accel/secrets/MISSING").status_code == 404


def test_stock_gateway_is_not_supported(env):
    server = env["server"]
    r = server.api("GET", "/accel/runtimes/stock/secrets")
    assert r.status_code == 501
    assert "not supported by this runtime" in r.json()["message"]


def test_only_kernels_ask_and_a_second_server_does_not_answer_for_them(env):
    """A process that is not a kernel gets nothing from the socket; with two servers linked to
    one runtime, the kernel's own server answers (the newest one does not know the kernel)."""
    server, g, tmp = env["server"], env["g"], env["tmp"]
    s = start_session(server, "accel--g--python3", "third.ipynb")
    other = server_with(tmp / "server2", [{"name": "g", "url": g.url, "token": g.token}])
    try:
        other.api("GET", "/accel/secrets")  # starts its links
        deadline = time.monotonic() + 30
        while not other.api("GET", "/accel/runtimes/g/secrets").json().get("linked"):
            assert time.monotonic() < deadline, "the second server never linked"
            time.sleep(0.3)
        server.api("POST", "/accel/secrets/HF_TOKEN/grants", json={"path": "third.ipynb"})
        with KernelClient(server.url, s["kernel"]["id"], server.token) as kc:
            assert SHA in read_secret(server, kc, "HF_TOKEN")
            path = kc.execute("import os; print(os.environ['ACCEL_SECRETS_SOCKET'])")["stdout"]
    finally:
        other.stop()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:  # this test is no kernel
        conn.settimeout(10)
        conn.connect(path.strip())
        conn.sendall(b'{"name": "HF_TOKEN"}\n')
        answer = json.loads(conn.makefile().readline())
    assert "value" not in answer and "not a kernel" in answer["message"]


def test_a_headless_server_answers_granted_reads(env):
    """No browser and no /accel/secrets call: the server links to its runtimes at start."""
    g, tmp = env["g"], env["tmp"]
    state = tmp / "headless" / "state"
    state.mkdir(parents=True)
    (state / "secrets.json").write_text(
        json.dumps({"HF_TOKEN": {"value": VALUE, "notebooks": ["headless.ipynb"]}})
    )
    os.chmod(state / "secrets.json", 0o600)
    server = server_with(tmp / "headless", [{"name": "g", "url": g.url, "token": g.token}])
    try:
        s = start_session(server, "accel--g--python3", "headless.ipynb")
        with KernelClient(server.url, s["kernel"]["id"], server.token) as kc:
            deadline = time.monotonic() + 30
            while "no JupyterLab server is connected" in (
                text := read_secret(server, kc, "HF_TOKEN")
            ):
                assert time.monotonic() < deadline, text
                time.sleep(0.5)
            assert SHA in text
    finally:
        server.stop()


def test_drive_mount_takes_credentials_by_secret_name(env):
    """`drive.mount(..., secrets={setting: NAME})`: the credential is read with userdata (the
    mount then reaches the storage step: an unreachable endpoint here), never typed in a cell."""
    server = env["server"]
    r = server.api("POST", "/accel/secrets/HF_TOKEN/grants", json={"path": "drive.ipynb"})
    assert r.status_code in (200, 201, 204), r.text
    s = start_session(server, "accel--g--python3", "drive.ipynb")
    code = (
        "from accel_gateway import drive\n"
        "cfg = {'type': 's3', 'provider': 'Other', 'access_key_id': 'AKID',\n"
        "       'endpoint': 'http://127.0.0.1:9'}\n"
        "try:\n"
        "    drive.mount('s3', 'mine:bucket', config=cfg, timeout=10,\n"
        "                secrets={'secret_access_key': 'HF_TOKEN'})\n"
        "except drive.DriveError as e:\n"
        "    print('mount refused:', e.reason)\n"
        "try:\n"
        "    drive.mount('s3b', 'mine:bucket', config=cfg, secrets={'secret_access_key': 'NOPE'})\n"
        "except Exception as e:\n"
        "    print('no secret:', type(e).__name__)\n"
    )
    with KernelClient(server.url, s["kernel"]["id"], server.token) as kc:
        out = kc.execute(code, 90)
    assert "mount refused: unreachable" in out["stdout"], out
    assert "no secret: SecretNotFoundError" in out["stdout"], out
    journal = server.api("GET", f"/accel/kernels/{s['kernel']['id']}/journal").text
    assert VALUE not in journal and VALUE not in out["stdout"]


def test_mount_drive_dialog_secret_names_are_filled_in_by_the_server(env):
    """The dialog sends `{"from_secret": NAME}`; the server puts the value in before the mount
    request goes to the runtime (which then asks the storage: unreachable here)."""
    server = env["server"]
    cfg = {"type": "s3", "provider": "Other", "endpoint": "http://127.0.0.1:9"}
    body = {"source": "user:bucket", "mount_point": "d1", "mode": "sync", "config": cfg}
    cfg["secret_access_key"] = {"from_secret": "HF_TOKEN"}
    cfg["access_key_id"] = "AKID"
    r = server.api("POST", "/accel/runtimes/g/mounts", json=body)
    assert r.status_code == 503 and r.json()["reason"] == "unreachable", r.text
    assert VALUE not in r.text
    cfg["secret_access_key"] = {"from_secret": "NOPE"}
    r = server.api("POST", "/accel/runtimes/g/mounts", json=body)
    assert r.status_code == 400 and "NOPE" in r.json()["message"], r.text
