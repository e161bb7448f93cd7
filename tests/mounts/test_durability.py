"""Gateway stop and crash: written files reach the remote (FUSE)."""

from __future__ import annotations

import json
import os
import signal
import time

import psutil
import pytest
from accel_gateway.mounts.fuse import DEAD_MOUNT_ERRNOS

from tests.support.procs import start_gateway

from .conftest import fuse_only, gateway_config

pytestmark = [pytest.mark.fuse, fuse_only]


def _gateway(d, state):
    # A long write-back delay: only a flush (or the next mount) can send the files in time.
    d.mkdir(parents=True, exist_ok=True)
    return start_gateway(d, f"--config={gateway_config(d / 'c.json', state, write_back=60.0)}")


def _mount(gw, remote):
    r = gw.api("POST", "/api/accel/mounts", json={"source": str(remote), "mount_point": "drive"})
    assert r.status_code == 201, r.text
    return r.json()


def test_sigterm_flushes_every_mount(tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    gw = _gateway(tmp_path / "gw", tmp_path / "state")
    try:
        _mount(gw, remote)
        (gw.root / "drive" / "unsent.txt").write_text("sent at shutdown")
        assert gw.api("GET", "/api/accel/mounts").json()[0]["pending_uploads"] == 1
        assert not (remote / "unsent.txt").exists()
    finally:
        gw.stop()  # SIGTERM
    assert gw.proc.returncode is not None
    assert (remote / "unsent.txt").read_text() == "sent at shutdown"
    assert not os.path.ismount(gw.root / "drive")


def test_files_unsent_at_a_crash_go_up_at_the_next_mount(tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    state = tmp_path / "state"
    gw = _gateway(tmp_path / "gw", state)
    try:
        _mount(gw, remote)
        (gw.root / "drive" / "crash.txt").write_text("in the cache only")
        time.sleep(0.3)
        rclone = [
            p for p in psutil.Process(gw.pid).children(recursive=True) if p.name() == "rclone"
        ]
        os.killpg(gw.pid, signal.SIGKILL)  # the gateway dies without a flush...
        for p in rclone:
            p.kill()  # ...and so does its rclone
        gw.proc.wait(10)
        assert not (remote / "crash.txt").exists()
        with pytest.raises(OSError) as dead:
            os.listdir(gw.root / "drive")
        assert dead.value.errno in DEAD_MOUNT_ERRNOS  # e.g. Transport endpoint is not connected
    finally:
        gw.stop()
    # A new gateway on the same state dir and workspace: the dead mount is cleared, the cache
    # dir is the same, rclone uploads what was left in it.
    gw2 = start_gateway(tmp_path / "gw", f"--config={tmp_path / 'gw' / 'c.json'}")
    try:
        st = _mount(gw2, remote)
        assert (gw2.root / "drive" / "crash.txt").read_text() == "in the cache only"
        assert gw2.api("POST", f"/api/accel/mounts/{st['id']}/flush").status_code == 200
        assert (remote / "crash.txt").read_text() == "in the cache only"
        gw2.api("DELETE", f"/api/accel/mounts/{st['id']}")
    finally:
        gw2.stop()


def test_salvage_when_rclone_lost_the_metadata(tmp_path):
    """rclone deletes a cached file whose metadata is empty (a kill while it rewrites it); the
    gateway uploads such files itself before remounting."""
    remote = tmp_path / "remote"
    remote.mkdir()
    state = tmp_path / "state"
    gw = _gateway(tmp_path / "gw", state)
    try:
        st = _mount(gw, remote)
        (gw.root / "drive" / "closed.txt").write_text("closed before the kill")
        time.sleep(0.3)
        (proc,) = [
            p for p in psutil.Process(gw.pid).children(recursive=True) if p.name() == "rclone"
        ]
        metas = [
            os.path.join(d, f)
            for d, _, fs in os.walk(state / "cache")
            for f in fs
            if f == "closed.txt" and "vfsMeta" in d
        ]
        assert len(metas) == 1 and json.load(open(metas[0]))
        proc.send_signal(signal.SIGSTOP)
        open(metas[0], "w").close()  # what a kill inside rclone's rewrite leaves
        proc.kill()
        for _ in range(100):
            s = gw.api("GET", f"/api/accel/mounts/{st['id']}").json()
            if s["restarts"] == 1 and s["state"] == "mounted":
                break
            time.sleep(0.1)
        assert [e["kind"] for e in s["events"]][-2:] == ["salvaged", "remounted"], s["events"]
        assert (remote / "closed.txt").read_text() == "closed before the kill"
        assert (gw.root / "drive" / "closed.txt").read_text() == "closed before the kill"
    finally:
        gw.stop()
