"""Real storage servers on 127.0.0.1 (moto_server for S3, `rclone serve webdav`, a local folder)
and a gateway configured for quick mounts. Every process started here is stopped by PID."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest
from accel_gateway.mounts.fuse import fuse_problem

from tests.support import waiting
from tests.support.procs import free_port, start_gateway, stop, wait_http

FUSE_PROBLEM = fuse_problem()
fuse_only = pytest.mark.skipif(FUSE_PROBLEM is not None, reason=f"no FUSE here: {FUSE_PROBLEM}")

# Distinctive values: tests grep for them in logs, responses and process command lines.
S3_KEY = "AKIA" + secrets.token_hex(6).upper()
S3_SECRET = "s3secret-" + secrets.token_hex(12)
DAV_PASS = "davsecret-" + secrets.token_hex(12)


class Moto:
    def __init__(self, url: str):
        self.url = url

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
        )

    def bucket(self) -> str:
        name = "b" + secrets.token_hex(6)
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> dict:
        out = self.client().list_objects_v2(Bucket=bucket).get("Contents", [])
        return {o["Key"]: o["Size"] for o in out}

    def get(self, bucket: str, key: str) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def config(self) -> dict:
        return {
            "type": "s3",
            "provider": "Other",
            "endpoint": self.url,
            "region": "us-east-1",
            "access_key_id": S3_KEY,
            "secret_access_key": S3_SECRET,
            "force_path_style": True,
        }


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/", timeout=30, proc=proc)
        yield Moto(f"http://127.0.0.1:{port}")
    finally:
        stop(proc)


class WebDav:
    def __init__(self, url: str, root, obscured: str):
        self.url, self.root, self.obscured = url, root, obscured

    def config(self) -> dict:
        return {
            "type": "webdav",
            "url": self.url,
            "vendor": "rclone",
            "user": "tester",
            "pass": self.obscured,
        }


@pytest.fixture(scope="session")
def webdav(tmp_path_factory):
    base = tmp_path_factory.mktemp("webdav")
    root = base / "root"
    root.mkdir()
    port = free_port()
    obscured = subprocess.run(
        ["rclone", "obscure", "-"], input=DAV_PASS, capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {**os.environ, "RCLONE_USER": "tester", "RCLONE_PASS": DAV_PASS}
    with open(base / "webdav.log", "wb") as out:
        proc = subprocess.Popen(
            [
                "rclone",
                "serve",
                "webdav",
                str(root),
                "--addr",
                f"127.0.0.1:{port}",
                "--dir-cache-time",
                "0s",
            ],  # serve fresh
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/", timeout=30, proc=proc)
        yield WebDav(f"http://127.0.0.1:{port}/", root, obscured)
    finally:
        stop(proc)


def gateway_config(path, state_dir, **traits) -> str:
    """A config file (not the command line: it may hold secrets) for MountManager."""
    conf = {
        "MountManager": {
            "state_dir": str(state_dir),
            "write_back": 2.0,
            "dir_cache_time": 2.0,
            "sync_interval": 2.0,
            "watchdog_interval": 0.5,
            **traits,
        }
    }
    path.write_text(json.dumps(conf))
    os.chmod(path, 0o600)
    return str(path)


@pytest.fixture(scope="module")
def mount_gateway(tmp_path_factory, moto):
    """One gateway per module, with a server-configured S3 remote named `team`."""
    d = tmp_path_factory.mktemp("mgw")
    conf = gateway_config(d / "config.json", d / "state", remotes={"team": moto.config()})
    gw = start_gateway(d, f"--config={conf}")
    gw.extra["state_dir"] = d / "state"
    yield gw
    gw.stop()


def wait_for(pred, timeout: float = 20, interval: float = 0.1, what: str = "condition"):
    """tests.support.waiting.wait_for with this folder's argument order and defaults."""
    return waiting.wait_for(pred, timeout, what, interval)
