"""Sync mode through the gateway and from kernels: runs everywhere, FUSE or not."""

from __future__ import annotations

import os

from .conftest import wait_for
from .kernel import FILE_OPS, kernel


def test_kernel_sync_mode_to_s3(mount_gateway, moto):
    gw, bucket = mount_gateway, moto.bucket()
    moto.client().put_object(Bucket=bucket, Key="data/seed.txt", Body=b"seed")
    mp = str(gw.root / "synced")
    with kernel(gw) as k:
        out = k.run(
            "from accel_gateway import drive\n"
            f"m = drive.mount({mp!r}, 'mys3:{bucket}/data', config={moto.config()!r}, "
            "mode='sync')\nprint(m['mode'], '|', m['label'], '|', m['live'])"
        )
        assert "sync | synced, not live | False" in out
        assert open(os.path.join(mp, "seed.txt")).read() == "seed"  # copied down
        k.run(FILE_OPS.format(root=mp))
        k.run("drive.flush()")
        keys = moto.keys(bucket)
        assert {"data/a.npy", "data/t.csv", "data/cfg.json", "data/db.sqlite"} <= set(keys)
        assert moto.get(bucket, "data/t.csv").decode().split() == ["x", "1", "2", "3"]
        k.run(f"open({mp!r} + '/last.bin', 'wb').write(b'q' * 1000)\ndrive.flush_and_unmount()")
        assert moto.get(bucket, "data/last.bin") == b"q" * 1000
        assert os.listdir(mp) == []


def test_sync_mode_timer_pushes_and_pulls(mount_gateway, tmp_path):
    gw = mount_gateway
    remote = tmp_path / "remote"
    remote.mkdir()
    r = gw.api(
        "POST",
        "/api/accel/mounts",
        json={"source": str(remote), "mount_point": "s2", "mode": "sync"},
    )
    assert r.status_code == 201, r.text
    st = r.json()
    assert st["mode"] == "sync" and st["label"] == "synced, not live"
    assert st["source"] == str(remote)
    mid, mp = st["id"], gw.root / "s2"
    (mp / "local.txt").write_text("up by the timer")
    (remote / "remote.txt").write_text("down by the timer")
    # sync_interval is 2 s in these tests
    wait_for(lambda: (remote / "local.txt").exists(), timeout=10, what="timer push")
    wait_for(lambda: (mp / "remote.txt").exists(), timeout=10, what="timer pull")
    st = gw.api("GET", f"/api/accel/mounts/{mid}").json()
    assert st["pending_uploads"] == 0 and st["last_sync"]
    os.remove(mp / "local.txt")
    assert gw.api("POST", f"/api/accel/mounts/{mid}/flush").status_code == 200
    assert (remote / "local.txt").exists()  # never deleted on the remote
    assert gw.api("DELETE", f"/api/accel/mounts/{mid}").status_code == 204
    assert gw.api("GET", f"/api/accel/mounts/{mid}").status_code == 404
