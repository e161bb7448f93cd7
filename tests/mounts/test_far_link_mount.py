"""Mount drive as the browser does it, through the server, with the `far` link (80 ms RTT,
50 Mbit/s) between the server and the runtime: the mount, a Files read of the mounted bucket,
an upload into it that reaches the bucket, the unmount. Catches timeouts only a slow link shows."""

from __future__ import annotations

import pytest

from bench.linkemu import LinkProcess
from bench.upload import chunked_upload
from tests.server.conftest import server_with

from .conftest import fuse_only, wait_for

pytestmark = [pytest.mark.timeout(180), fuse_only]


@fuse_only
def test_mount_drive_over_far_link(mount_gateway, moto, tmp_path):
    gw, bucket = mount_gateway, moto.bucket()
    moto.client().put_object(Bucket=bucket, Key="seed.txt", Body=b"seed over the far link")
    link = LinkProcess(gw.port, profile="far")
    server = server_with(tmp_path / "server", [{"name": "far", "url": link.url, "token": gw.token}])
    try:
        base = "/accel/runtimes/far"
        r = server.api(
            "POST",
            f"{base}/mounts",
            json={"source": f"team:{bucket}", "mount_point": "far-drive"},
            timeout=120,
        )
        assert r.status_code == 201, r.text
        mount_id = r.json()["id"]
        read = server.api("GET", f"{base}/contents/far-drive/seed.txt?content=1", timeout=60)
        assert read.status_code == 200 and read.json()["content"] == "seed over the far link"
        size = 1024 * 1024 + 7  # two JupyterLab chunks
        chunked_upload(server, f"{base}/contents/far-drive/up.bin", size, 60, keep=True)
        assert server.api("POST", f"{base}/mounts/{mount_id}/flush", timeout=60).status_code in (
            200,
            204,
        )
        wait_for(
            lambda: moto.keys(bucket).get("up.bin") == size,
            30,
            what="the upload to reach the bucket",
        )
        assert server.api("DELETE", f"{base}/mounts/{mount_id}", timeout=60).status_code == 204
        assert link.stats()["exchanges"] > 0  # it did go through the link
    finally:
        server.stop()
        link.close()
