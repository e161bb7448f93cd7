"""Which rclone backends a mount request may use (issue 12, item 5): with
MountManager.allow_local_sources off, nothing reaches the host's files, commands or identity."""

from __future__ import annotations

import pytest
from accel_gateway.mounts.source import DEFAULT_BACKEND_TYPES, MountError, check_backend
from accel_gateway.mounts.source import parse_source as parse

from tests.support.procs import start_gateway

from .conftest import gateway_config

SERVER = {"team": {"type": "s3", "settings": {"type": "s3", "provider": "AWS"}}}

# (config, reason) each refused when local sources are off.
REFUSED = [
    ({"type": "local"}, "backend_not_allowed"),
    ({"type": "alias", "remote": "/etc"}, "backend_not_allowed"),
    ({"type": "alias", "remote": ":local:/etc"}, "backend_not_allowed"),
    ({"type": "union", "upstreams": "/etc /root"}, "backend_not_allowed"),
    ({"type": "combine", "upstreams": "etc=/etc"}, "backend_not_allowed"),
    ({"type": "chunker", "remote": "/etc"}, "backend_not_allowed"),
    ({"type": "crypt", "remote": "/srv/data", "password": "x"}, "backend_not_allowed"),
    ({"type": "compress", "remote": "relative/folder"}, "backend_not_allowed"),
    ({"type": "hasher", "remote": "other:/etc"}, "backend_not_allowed"),
    ({"type": "cache", "remote": "team:b", "chunk_path": "/etc"}, "setting_not_allowed"),
    ({"type": "sftp", "host": "h", "ssh": "sh -c 'cat /etc/shadow'"}, "setting_not_allowed"),
    ({"type": "sftp", "host": "h", "key_file": "/root/.ssh/id_rsa"}, "setting_not_allowed"),
    ({"type": "sftp", "host": "h", "key_use_agent": True}, "setting_not_allowed"),
    ({"type": "webdav", "url": "http://h", "bearer_token_command": "id"}, "setting_not_allowed"),
    ({"type": "s3", "env_auth": True}, "setting_not_allowed"),
    ({"type": "s3", "shared_credentials_file": "/root/.aws/c"}, "setting_not_allowed"),
    ({"type": "drive", "service_account_file": "/etc/sa.json"}, "setting_not_allowed"),
    ({"type": "gcs", "env_auth": "true"}, "setting_not_allowed"),
    ({"type": "memory"}, "backend_not_allowed"),  # not on the allow-list at all
    ({"type": "Local"}, "backend_not_allowed"),
]


def check(source, config, allow_local, types=DEFAULT_BACKEND_TYPES, server=SERVER):
    src = parse(source, config, server, allow_local)
    check_backend(src, server, types, allow_local)
    return src


@pytest.mark.parametrize("config, reason", REFUSED)
def test_host_reaching_backends_refused_when_local_sources_are_off(config, reason):
    with pytest.raises(MountError) as e:
        check("mine:x", config, allow_local=False)
    assert e.value.reason == reason and e.value.status == 400
    assert "local sources are off" in e.value.message or "allowed" in e.value.message


def test_what_stays_allowed():
    check("mine:bucket", {"type": "s3", "access_key_id": "k", "env_auth": False}, False)
    check("mine:", {"type": "webdav", "url": "https://dav.example.org"}, False)
    # A wrapper over a remote of this runtime: its settings reach rclone with it.
    src = check("sealed:", {"type": "crypt", "remote": "team:bucket", "password": "p1234"}, False)
    assert src.env()["RCLONE_CONFIG_TEAM_PROVIDER"] == "AWS"
    assert src.env()["RCLONE_CONFIG_SEALED_REMOTE"] == "team:bucket"
    # With local sources on (single-user default), local and wrappers over paths are fine.
    check("mine:x", {"type": "alias", "remote": "/srv/data"}, True)
    check("mine:x", {"type": "local"}, True)
    check("/srv/data", None, True)
    with pytest.raises(MountError):
        check("mine:x", {"type": "memory"}, True)  # off the list either way
    check("mine:x", {"type": "memory"}, True, types=["memory"])


def test_server_remote_names_are_not_merged_with_a_callers_config():
    with pytest.raises(MountError) as e:
        check("team:bucket", {"type": "s3", "endpoint": "http://evil"}, True)
    assert e.value.reason == "remote_name_taken"


def test_api_refuses_local_and_alias_and_copies_nothing(tmp_path):
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host only\n")
    conf = gateway_config(tmp_path / "c.json", tmp_path / "state", allow_local_sources=False)
    gw = start_gateway(tmp_path / "gw", f"--config={conf}")
    try:
        remotes = gw.api("GET", "/api/accel/mounts/remotes").json()
        assert "local" not in remotes["backend_types"] and "s3" in remotes["backend_types"]
        bodies = [
            {"source": str(tmp_path)},
            {"source": f"h:{tmp_path}", "config": {"type": "local"}},
            {"source": "h:", "config": {"type": "alias", "remote": str(tmp_path)}},
            {"source": "h:", "config": {"type": "union", "upstreams": str(tmp_path)}},
            {"source": "h:", "config": {"type": "crypt", "remote": f":local:{tmp_path}"}},
        ]
        for i, body in enumerate(bodies):
            body = {**body, "mode": "sync", "mount_point": f"m{i}"}
            r = gw.api("POST", "/api/accel/mounts", json=body)
            assert r.status_code == 400, (body, r.text)
            assert r.json()["reason"] in ("bad_source", "backend_not_allowed"), r.text
        assert not list(gw.root.rglob("host-secret.txt"))
        assert gw.api("GET", "/api/accel/mounts").json() == []
    finally:
        gw.stop()
