"""Sync mode's engine on its own (real rclone, local folders): conflicts, no deletes, resume."""

from __future__ import annotations

import os
import time

import pytest
from accel_gateway.mounts.rclone import RcloneSettings
from accel_gateway.mounts.source import MountError, Source
from accel_gateway.mounts.sync import SyncMount


def engine(tmp_path, remote, mp="mnt"):
    src = Source("loc", str(remote), "local", {"type": "local"})
    return SyncMount(
        src,
        str(tmp_path / mp),
        str(tmp_path / "manifest.json"),
        str(tmp_path / "sync.log"),
        RcloneSettings(),
    )


@pytest.fixture
def remote(tmp_path):
    r = tmp_path / "remote"
    (r / "sub").mkdir(parents=True)
    (r / "a.txt").write_text("A1")
    (r / "sub" / "b.txt").write_text("B1")
    return r


def test_copy_down_pending_push_and_never_delete(tmp_path, remote):
    e = engine(tmp_path, remote)
    e.start(60)
    mp = tmp_path / "mnt"
    assert (mp / "sub" / "b.txt").read_text() == "B1"
    assert e.pending()["uploads_queued"] == 0
    (mp / "new.txt").write_text("N")
    (mp / "a.txt").write_text("A2")
    os.remove(mp / "sub" / "b.txt")
    assert e.pending()["uploads_queued"] == 2
    e.flush(60)
    assert e.pending()["uploads_queued"] == 0
    assert (remote / "new.txt").read_text() == "N" and (remote / "a.txt").read_text() == "A2"
    assert (remote / "sub" / "b.txt").read_text() == "B1"  # a local delete never deletes remotely
    e.sync()
    assert not (mp / "sub" / "b.txt").exists()  # nor is it brought back


def test_conflict_keeps_both(tmp_path, remote):
    e = engine(tmp_path, remote)
    e.start(60)
    mp = tmp_path / "mnt"
    time.sleep(0.01)
    (mp / "a.txt").write_text("local edit")
    (remote / "a.txt").write_text("remote edit, longer")
    result = e.sync()
    assert result["conflicts"] == 1
    assert (mp / "a.txt").read_text() == "remote edit, longer"
    (kept,) = [p for p in os.listdir(remote) if p.startswith("a (conflict ")]
    assert (remote / kept).read_text() == "local edit" and (mp / kept).read_text() == "local edit"
    assert e.pending()["conflicts"] == [kept]


def test_remote_changes_come_down(tmp_path, remote):
    e = engine(tmp_path, remote)
    e.start(60)
    (remote / "later.txt").write_text("L")
    (remote / "sub" / "b.txt").write_text("B2")
    e.sync()
    assert (tmp_path / "mnt" / "later.txt").read_text() == "L"
    assert (tmp_path / "mnt" / "sub" / "b.txt").read_text() == "B2"


def test_resume_after_crash_pushes_unsent_changes(tmp_path, remote):
    e = engine(tmp_path, remote)
    e.start(60)
    (tmp_path / "mnt" / "unsent.txt").write_text("U")
    e.stop()  # the gateway died: local copy and manifest stay
    e2 = engine(tmp_path, remote)
    assert e2.has_manifest()
    e2.start(60)
    assert (remote / "unsent.txt").read_text() == "U"


def test_unmount_pushes_then_empties_the_folder(tmp_path, remote):
    e = engine(tmp_path, remote)
    e.start(60)
    (tmp_path / "mnt" / "last.txt").write_text("Z")
    e.flush(60)
    e.unmount()
    assert (remote / "last.txt").read_text() == "Z"
    assert os.listdir(tmp_path / "mnt") == [] and not e.has_manifest()


def test_unreachable_remote_is_a_clear_error(tmp_path):
    src = Source("dav", "", "webdav", {"type": "webdav", "url": "http://127.0.0.1:9/"})
    e = SyncMount(
        src,
        str(tmp_path / "m"),
        str(tmp_path / "m.json"),
        str(tmp_path / "l.log"),
        RcloneSettings(),
    )
    with pytest.raises(MountError) as err:
        e.start(30)
    assert err.value.reason == "sync_failed" and "rclone lsjson failed" in err.value.message
