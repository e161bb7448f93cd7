"""Mount logic without a server: sources, mount points, mode choice, remotes, credentials."""

from __future__ import annotations

import os

import pytest
from accel_gateway.mounts import manager as manager_mod
from accel_gateway.mounts.manager import MountManager
from accel_gateway.mounts.rclone import RcloneSettings, rclone_env
from accel_gateway.mounts.source import MountError, parse_source, resolve_mount_point
from accel_gateway.mounts.sync import conflict_name


def test_source_with_config_goes_to_rclone_as_environment_only():
    cfg = {"type": "s3", "secret_access_key": "SEKRET", "force_path_style": True}
    s = parse_source("mine:bucket/dir", cfg, {})
    assert s.spec == "mine:bucket/dir" and "SEKRET" not in s.spec and "SEKRET" not in repr(s)
    env = rclone_env(s, RcloneSettings())
    assert env["RCLONE_CONFIG_MINE_SECRET_ACCESS_KEY"] == "SEKRET"
    assert env["RCLONE_CONFIG_MINE_FORCE_PATH_STYLE"] == "true"
    assert "JUPYTER_TOKEN" not in env
    assert parse_source("bucket/dir", cfg, {}).spec == "src:bucket/dir"
    # Other settings, other cache dir: unsent files never go to the wrong storage.
    assert s.key() != parse_source("mine:bucket/dir", {**cfg, "endpoint": "x"}, {}).key()


@pytest.mark.parametrize(
    "source,config,reason",
    [
        ("", None, "bad_source"),
        (":s3:bucket", None, "bad_source"),
        ("-x", None, "bad_source"),
        ("a b:c", {"type": "s3"}, "bad_source"),
        ("nope:x", None, "unknown_remote"),
        ("x:y", {"type": ""}, "bad_config"),
        ("x:y", {"type": "s3", "k": [1]}, "bad_config"),
        ("x:y\n--z", {"type": "s3"}, "bad_source"),
    ],
)
def test_bad_sources(source, config, reason):
    with pytest.raises(MountError) as e:
        parse_source(source, config, {"team": {"type": "s3"}})
    assert e.value.reason == reason and e.value.status == 400


def test_mount_points_stay_inside_the_workspace(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    os.symlink(tmp_path, ws / "out")
    assert resolve_mount_point(str(ws), None) == str(ws / "drive")
    assert resolve_mount_point(str(ws), "a/b/../c") == str(ws / "a" / "c")
    assert resolve_mount_point(str(ws), str(ws / "x")) == str(ws / "x")
    for bad in ["..", "../ws2", "/etc", "out/x", ".", str(ws), "a/../../x"]:
        with pytest.raises(MountError):
            resolve_mount_point(str(ws), bad)


def test_mode_falls_back_to_sync_without_fuse(monkeypatch, tmp_path):
    m = MountManager(state_dir=str(tmp_path))
    monkeypatch.setattr(manager_mod, "fuse_problem", lambda rclone: "/dev/fuse is missing")
    d = m.describe()
    assert d["fuse_available"] is False and d["default_mode"] == "sync"
    assert d["fuse_problem"] == "/dev/fuse is missing"
    with pytest.raises(MountError) as e:
        m._pick_mode("fuse", "/dev/fuse is missing")
    assert e.value.reason == "fuse_unavailable" and e.value.status == 409
    assert MountManager(mode="sync")._pick_mode("auto", None) == "sync"


def test_remotes_from_rclone_conf_and_traits_by_name_and_type(tmp_path):
    conf = tmp_path / "rclone.conf"
    conf.write_text("[teamdav]\ntype = webdav\nurl = http://127.0.0.1:1/\npass = hidden\n")
    m = MountManager(
        rclone_config=str(conf), remotes={"bucket": {"type": "s3", "secret_access_key": "S"}}
    )
    assert m.describe()["remotes"] == [
        {"name": "bucket", "type": "s3"},
        {"name": "teamdav", "type": "webdav"},
    ]


def test_conflict_name():
    assert conflict_name("d/a.csv", 0) == "d/a (conflict 1970-01-01 000000).csv"
    assert conflict_name("noext", 0) == "noext (conflict 1970-01-01 000000)"
