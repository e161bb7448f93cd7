"""The correctness paths once through the `far` link (80 ms RTT, 50 Mbit/s) between the server
and the runtime, to catch timeouts that only a slow link shows: a kernel starts and its cells
run, a large output arrives whole, Files uploads in JupyterLab's chunks through
/accel/runtimes/{name}/contents, and a cut of the link is survived with every line once."""

from __future__ import annotations

import dataclasses
import os
import time

import pytest

from bench.linkemu import LinkProcess
from bench.upload import chunked_upload
from tests.reliability.output import (
    new_session,
    numbers,
    printer,
    read_for,
    send_execute,
    stream_text,
)
from tests.server.conftest import server_with, start_session
from tests.support.kernel_ws import KernelClient
from tests.support.procs import start_gateway

pytestmark = pytest.mark.timeout(150)


@pytest.fixture(scope="module")
def far(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("far")
    gw = start_gateway(tmp / "gw")
    link = LinkProcess(gw.port, profile="far")
    runtimes = [{"name": "far", "url": link.url, "token": gw.token}]
    server = server_with(tmp / "server", runtimes)  # loopback URL: 'auto' does not compress
    deflate = server_with(
        tmp / "deflate",
        runtimes,
        extra={"RuntimeRegistry": {"websocket_compression": "on", "http_compression": "on"}},
    )
    try:
        yield {"gw": gw, "link": link, "server": server, "deflate": deflate}
    finally:
        deflate.stop()
        server.stop()
        link.close()
        gw.stop()


def test_kernel_starts_and_runs_over_far_link(far):
    server = far["server"]
    t0 = time.monotonic()
    kid = start_session(server, "accel--far--python3", "far.ipynb")["kernel"]["id"]
    with KernelClient(server.url, kid, server.token, protocol="v1", timeout=60) as c:
        assert c.eval("1 + 1", timeout=30) == "2"
        started = time.monotonic() - t0
        r = c.execute("print('z' * 5_000_000)", timeout=60)  # ~0.8 s of link time
        assert len(r["stdout"]) == 5_000_001 and r["reply"]["status"] == "ok"
    assert far["link"].stats()["down_bytes"] >= 5_000_000  # it did cross the link
    print(f"far link: session start -> first result {started:.2f}s")


def test_output_compressed_on_the_link_when_on(far):
    server, link = far["deflate"], far["link"]
    kid = start_session(server, "accel--far--python3", "far-deflate.ipynb")["kernel"]["id"]
    with KernelClient(server.url, kid, server.token, protocol="v1", timeout=60) as c:
        assert c.eval("1 + 1", timeout=30) == "2"
        link.reset()
        t0 = time.monotonic()
        r = c.execute("print(''.join(f'{i:09d} loss=0.5\\n' for i in range(250_000)))", timeout=60)
        dt = time.monotonic() - t0
    assert len(r["stdout"]) == 250_000 * 19 + 1  # 4.75 MB of text arrived whole
    wire = link.stats()["down_bytes"]
    print(f"far link, deflate on: 4.75 MB of text as {wire / 1e6:.2f} MB on the link, {dt:.2f}s")
    assert wire < 1_500_000, wire  # permessage-deflate was negotiated and used


def test_files_answers_gzipped_on_the_link_when_on(far, tmp_path):
    # A link and a server of its own: the module's kernels pull these new files back over
    # the shared link (file sync), which would count in its bytes.
    gw = far["gw"]
    link = LinkProcess(gw.port, profile="far")
    server = server_with(
        tmp_path / "gzip",
        [{"name": "far", "url": link.url, "token": gw.token}],
        extra={"RuntimeRegistry": {"http_compression": "on"}},
    )
    try:
        _gzip_on_the_link(far, gw, link, server)
    finally:
        server.stop()
        link.close()


def _gzip_on_the_link(far, gw, link, server):
    folder = gw.root / "many-far"
    folder.mkdir(exist_ok=True)
    for i in range(400):
        (folder / f"run-{i:04d}-metrics.csv").write_text("step,loss\n")
    log = "".join(f"{i:09d} epoch=1 loss=0.25 lr=3e-4\n" for i in range(60_000))
    (gw.root / "train-far.txt").write_text(log)
    base = "/accel/runtimes/far"
    link.reset()
    listing = server.api("GET", f"{base}/contents/many-far?content=1", timeout=60)
    assert listing.status_code == 200, listing.text
    assert len(listing.json()["content"]) == 400
    assert listing.headers.get("Content-Encoding") == "gzip"  # passed on, not decoded here
    listed_wire = link.stats()["down_bytes"]
    link.reset()
    download = server.api("GET", f"{base}/files/train-far.txt", timeout=60)
    assert download.status_code == 200 and download.text == log  # requests decoded it
    wire = link.stats()["down_bytes"]
    print(
        f"far link, gzip on: {len(listing.content)} B listing as {listed_wire} B, "
        f"{len(log) / 1e6:.2f} MB log as {wire / 1e6:.2f} MB on the link"
    )
    assert wire < len(log) / 3, wire
    plain = far["server"].api("GET", f"{base}/files/train-far.txt", timeout=60)
    assert plain.text == log and "Content-Encoding" not in plain.headers  # 'auto': loopback


def test_files_upload_over_far_link(far):
    server = far["server"]
    size = 3 * 1024 * 1024 + 5  # four JupyterLab chunks, the last one short
    dt = chunked_upload(server, "/accel/runtimes/far/contents/far-upload.bin", size, timeout=60)
    print(f"far link: {size / 1e6:.1f} MB uploaded in {dt:.2f}s")
    # the file landed on the runtime (chunked_upload also checked its size and deleted it)
    assert not (far["gw"].root / "far-upload.bin").exists()


def test_link_cut_and_restored_every_line_once(far):
    server, link = far["server"], far["link"]
    kid = start_session(server, "accel--far--python3", "far-cut.ipynb")["kernel"]["id"]
    with KernelClient(
        server.url, kid, server.token, protocol="v1", session=new_session(), timeout=60
    ) as c:
        msg_id = send_execute(c, printer(16, 0.25))
        got = read_for(c, msg_id, 1.5)
        link.cut()
        time.sleep(1.0)
        link.restore()
        got += read_for(c, msg_id, 40, until_idle=True)
    kinds = [m["content"]["kind"] for m in got if m["header"]["msg_type"] == "accel_notice"]
    assert "reconnecting" in kinds and "reconnected" in kinds, kinds
    assert numbers(stream_text(got)) == list(range(16))
    assert got[-1]["content"]["execution_state"] == "idle"


def test_link_process_gives_the_far_profile(far):
    link = far["link"]
    assert dataclasses.astuple(link.profile) == ("far", 0.080, 50e6 / 8)


def test_notebook_folder_is_there_when_the_start_answers(far, tmp_path):
    # The folder crosses the link while the kernel boots; 10 MB at 50 Mbit/s (1.6 s) takes longer than
    # an answer without it would, so a start that did not wait for its folder shows here.
    gw = far["gw"]
    link = LinkProcess(gw.port, profile="far")
    server = server_with(tmp_path / "sync", [{"name": "far", "url": link.url, "token": gw.token}])
    try:
        folder = server.root / "proj-far"
        folder.mkdir()
        data = os.urandom(10_000_000)
        (folder / "weights.bin").write_bytes(data)
        (folder / "prep.py").write_text("SCALE = 3\n")
        kid = start_session(server, "accel--far--python3", "proj-far/train.ipynb")["kernel"]["id"]
        remote = gw.root / "proj-far"
        assert (remote / "weights.bin").read_bytes() == data, "whole before the start answered"
        with KernelClient(server.url, kid, server.token, protocol="v1", timeout=60) as c:
            code = "import os, prep; print(os.getcwd(), os.path.getsize('weights.bin'), prep.SCALE)"
            r = c.execute(code, timeout=30)
        cwd, size, scale = r["stdout"].split()
        assert (cwd, size, scale) == (str(remote.resolve()), "10000000", "3")
        assert link.stats()["up_bytes"] >= 10_000_000  # it did cross the link
    finally:
        server.stop()
        link.close()
