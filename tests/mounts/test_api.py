"""REST contract of /api/accel/mounts: auth, validation, and secrets that never leak."""

from __future__ import annotations

import os

import psutil
import requests

from .conftest import DAV_PASS, S3_SECRET


def test_auth_required(mount_gateway):
    for method, path in [
        ("GET", ""),
        ("POST", ""),
        ("GET", "/remotes"),
        ("DELETE", "/0123456789ab"),
        ("POST", "/0123456789ab/flush"),
    ]:
        r = requests.request(method, mount_gateway.url + "/api/accel/mounts" + path, timeout=10)
        assert r.status_code in (401, 403), (method, path, r.status_code)


def test_remotes_lists_names_and_types_only(mount_gateway):
    r = mount_gateway.api("GET", "/api/accel/mounts/remotes")
    assert r.status_code == 200
    body = r.json()
    assert body["remotes"] == [{"name": "team", "type": "s3"}]
    assert body["default_mount_point"] == "drive" and body["default_mode"] in ("fuse", "sync")
    assert isinstance(body["fuse_available"], bool)
    assert S3_SECRET not in r.text


def test_bad_requests_are_clear_4xx(mount_gateway, tmp_path):
    gw = mount_gateway
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, gw.root / "escape")

    def post(body, raw=None):
        return (
            gw.api("POST", "/api/accel/mounts", json=body)
            if raw is None
            else gw.api("POST", "/api/accel/mounts", data=raw)
        )

    cases = [
        (post(None, raw=b"{not json"), 400, "bad_json"),
        (post(["a"]), 400, "bad_json"),
        (post({"source": "team:b", "mount_point": "../up"}), 400, "bad_mount_point"),
        (post({"source": "team:b", "mount_point": "/etc/x"}), 400, "bad_mount_point"),
        (post({"source": "team:b", "mount_point": "escape/x"}), 400, "bad_mount_point"),
        (post({"source": "team:b", "mount_point": "."}), 400, "bad_mount_point"),
        (post({"source": "nope:b"}), 400, "unknown_remote"),
        (post({"source": ":s3,access_key_id=x:b"}), 400, "bad_source"),
        (post({"source": "--config=/x"}), 400, "bad_source"),
        (post({"source": "x:b", "config": {"provider": "AWS"}}), 400, "bad_config"),
        (post({"source": "x:b", "config": {"type": "s3", "Bad-Key": 1}}), 400, "bad_config"),
        (post({"source": "team:b", "timeout": -1}), 400, "bad_request"),
        (post({"source": "team:b", "mode": "magic"}), 400, "bad_request"),
        (post({"source": "team:b", "readonly": "yes"}), 400, "bad_request"),
    ]
    for r, status, reason in cases:
        assert r.status_code == status, r.text
        assert r.json()["reason"] == reason and r.json()["message"], r.text
    assert gw.api("POST", "/api/accel/mounts/0123456789ab/flush").status_code == 404
    assert gw.api("DELETE", "/api/accel/mounts/0123456789ab").json()["reason"] == "not_found"
    assert not os.listdir(outside)


def test_busy_mount_point_and_double_mount(mount_gateway, tmp_path):
    gw = mount_gateway
    (gw.root / "full").mkdir()
    (gw.root / "full" / "x").write_text("x")
    r = gw.api(
        "POST",
        "/api/accel/mounts",
        json={"source": str(tmp_path), "mount_point": "full", "mode": "sync"},
    )
    assert r.status_code == 409 and r.json()["reason"] == "mount_point_not_empty"
    r = gw.api(
        "POST",
        "/api/accel/mounts",
        json={"source": str(tmp_path), "mount_point": "twice", "mode": "sync"},
    )
    assert r.status_code == 201
    again = {"source": str(tmp_path), "mount_point": "twice", "mode": "sync"}
    r2 = gw.api("POST", "/api/accel/mounts", json=again)
    assert r2.status_code == 409 and r2.json()["reason"] == "already_mounted"
    r3 = gw.api("POST", "/api/accel/mounts", json={**again, "force_remount": True})
    assert r3.status_code == 201 and r3.json()["id"] != r.json()["id"]
    assert gw.api("DELETE", f"/api/accel/mounts/{r3.json()['id']}").status_code == 204


def test_secrets_never_in_responses_logs_or_command_lines(mount_gateway, moto, webdav):
    gw = mount_gateway
    bucket = moto.bucket()
    mounts = [("s3", f"mys3:{bucket}", moto.config()), ("dav", "dav:", webdav.config())]
    texts, ids = [], []
    for mp, source, config in mounts:
        r = gw.api(
            "POST",
            "/api/accel/mounts",
            json={"source": source, "config": config, "mount_point": mp},
        )
        assert r.status_code == 201, r.text
        texts.append(r.text)
        ids.append(r.json()["id"])
    (gw.root / "s3" / "f.txt").write_text("f")
    texts.append(gw.api("GET", "/api/accel/mounts").text)
    cmdlines = [" ".join(p.cmdline()) for p in psutil.Process(gw.pid).children(recursive=True)]
    assert any("rclone" in c for c in cmdlines)
    for mid in ids:
        texts.append(gw.api("DELETE", f"/api/accel/mounts/{mid}").text)
    texts.append(gw.logtext())
    for dirpath, _, files in os.walk(gw.extra["state_dir"]):
        texts += [
            open(os.path.join(dirpath, f), errors="replace").read()
            for f in files
            if f.endswith((".log", ".json"))
        ]
    blob = "\n".join(texts + cmdlines)
    for secret in (S3_SECRET, DAV_PASS, webdav.obscured):
        assert secret not in blob
    assert moto.keys(bucket) == {"f.txt": 1}


def test_kernels_reach_the_gateway_without_the_token_in_their_environment(mount_gateway):
    from .kernel import kernel

    with kernel(mount_gateway) as k:
        out = k.run(
            "import os, stat, json\n"
            "p = os.environ['ACCEL_GATEWAY_INFO']\n"
            "print(oct(stat.S_IMODE(os.stat(p).st_mode)))\n"
            "print(json.dumps(dict(os.environ)))"
        )
        mode, env = out.splitlines()[0], out.splitlines()[1]
        assert mode == "0o600"
        assert mount_gateway.token not in env
        name, msg = k.error("from accel_gateway import drive\ndrive.flush_and_unmount('nowhere')")
        assert name == "DriveError" and "nothing is mounted at nowhere" in msg


def test_unreachable_storage_is_a_clear_error_and_leaves_nothing(mount_gateway):
    gw = mount_gateway
    body = {
        "source": "dav:",
        "mode": "sync",
        "mount_point": "bad",
        "config": {"type": "webdav", "url": "http://127.0.0.1:9/"},
    }
    r = gw.api("POST", "/api/accel/mounts", json=body, timeout=120)
    # Asked before anything is made: 503 with what to check, not a half-made mount.
    assert r.status_code == 503 and r.json()["reason"] == "unreachable", r.text
    assert "check the endpoint or URL" in r.json()["message"]
    assert not (gw.root / "bad").exists() or os.listdir(gw.root / "bad") == []
    assert all(m["mount_point"] != "bad" for m in gw.api("GET", "/api/accel/mounts").json())
