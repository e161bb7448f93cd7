"""FolderSync against a real gateway on 127.0.0.1: what goes, what comes back, conflicts."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from tornado.httpclient import HTTPRequest

from jupyterlab_accel.filesync import FileSync
from jupyterlab_accel.filesync.engine import FolderSync, RemoteFolder
from jupyterlab_accel.filesync.rules import SyncRules


class GatewayAt:
    """What FileSync needs of a runtime: a name, its features, and requests to it."""

    def __init__(self, name: str, gw):
        self.name, self.gw = name, gw
        self.embedded = False
        self.info = {"features": ["filesync"]}

    def request(self, path, method="GET", *, timeout=30, headers=None, **kw):
        headers = dict(headers or {}, Authorization=f"token {self.gw.token}")
        return HTTPRequest(
            self.gw.url + path, method=method, headers=headers, request_timeout=timeout, **kw
        )


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    nb = root / "sub" / "dir"
    nb.mkdir(parents=True)
    (nb / "data.csv").write_text("a,b\n1,2\n")
    (nb / "utils.py").write_text("X = 42\n")
    (nb / "pkg").mkdir()
    (nb / "pkg" / "mod.py").write_text("Y = 1\n")
    (nb / ".env").write_text("SECRET=1\n")
    (nb / "id_ed25519").write_text("key\n")
    (nb / "cert.pem").write_text("pem\n")
    (nb / ".git").mkdir()
    (nb / ".git" / "config").write_text("[core]\n")
    (nb / "node_modules" / "x").mkdir(parents=True)
    (nb / "node_modules" / "x" / "i.js").write_text("1")
    (nb / "myenv").mkdir()
    (nb / "myenv" / "pyvenv.cfg").write_text("home = /usr\n")
    (nb / "myenv" / "lib.py").write_text("")
    (nb / ".gitignore").write_text("*.log\nbuild/\n")
    (nb / "run.log").write_text("log\n")
    (nb / "build").mkdir()
    (nb / "build" / "a.o").write_text("o")
    outside = tmp_path / "outside.txt"
    outside.write_text("host file\n")
    os.symlink(outside, nb / "link_out.txt")
    (root / "shared.txt").write_text("inside root\n")
    os.symlink(root / "shared.txt", nb / "link_in.txt")
    (nb / "big.bin").write_bytes(b"\0" * 300_000)
    return root


def folder_sync(root: Path, gw, folder="sub/dir", max_bytes=100_000, records=None):
    fs = FileSync(root_dir=str(root), state_dir=None)
    rt = GatewayAt("b", gw)
    rules = SyncRules(root, folder, max_bytes=max_bytes)
    return FolderSync(rules, RemoteFolder(rt, fs.fetch), "b", records)


def test_push_sends_what_the_rules_allow(tree, gateway):
    fs = folder_sync(tree, gateway)
    run(fs.push())
    remote = gateway.root / "sub" / "dir"
    sent = sorted(p.relative_to(remote).as_posix() for p in remote.rglob("*") if p.is_file())
    assert sent == [".gitignore", "data.csv", "link_in.txt", "pkg/mod.py", "utils.py"]
    assert (remote / "link_in.txt").read_text() == "inside root\n"
    st = fs.status()
    assert st["state"] == "over_cap", st
    assert "Mount drive" in st["message"]
    assert sorted(st["left_behind"]["secrets"]) == [".env", "cert.pem", "id_ed25519"]
    assert st["left_behind"]["links_out_of_root"] == ["link_out.txt"]
    assert st["left_behind"]["over_cap_files"] == 1


def test_only_changes_move_and_outputs_come_back(tree, gateway):
    fs = folder_sync(tree, gateway, max_bytes=10_000_000)
    run(fs.push())
    first = fs.pushed
    run(fs.push())
    assert fs.pushed == first  # nothing changed, nothing sent
    time.sleep(0.01)
    (tree / "sub/dir/utils.py").write_text("X = 43\n")
    run(fs.push())
    assert fs.pushed == first + 1
    assert (gateway.root / "sub/dir/utils.py").read_text() == "X = 43\n"
    # the kernel writes a file and a folder on the runtime; they come back
    (gateway.root / "sub/dir/out.png").write_bytes(b"\x89PNG" + os.urandom(2000))
    (gateway.root / "sub/dir/results").mkdir()
    (gateway.root / "sub/dir/results/r.csv").write_text("r\n")
    run(fs.pull())
    assert (tree / "sub/dir/out.png").read_bytes() == (
        gateway.root / "sub/dir/out.png"
    ).read_bytes()
    assert (tree / "sub/dir/results/r.csv").read_text() == "r\n"
    assert fs.status()["state"] == "synced"
    # deletion on the runtime is reported, the local copy stays
    (gateway.root / "sub/dir/results/r.csv").unlink()
    run(fs.pull())
    assert (tree / "sub/dir/results/r.csv").exists()
    assert "results/r.csv" in fs.status()["deleted_on_runtime"]


def test_changed_on_both_sides_keeps_both(tree, gateway):
    fs = folder_sync(tree, gateway, max_bytes=10_000_000)
    run(fs.push())
    time.sleep(0.01)
    (tree / "sub/dir/data.csv").write_text("local edit\n")
    (gateway.root / "sub/dir/data.csv").write_text("kernel edit, longer\n")
    run(fs.pull())
    assert (tree / "sub/dir/data.csv").read_text() == "local edit\n"
    assert (tree / "sub/dir/data.conflict-b.csv").read_text() == "kernel edit, longer\n"
    st = fs.status()
    assert st["state"] == "conflict" and st["conflicts"] == ["data.conflict-b.csv"], st
    # the conflict copy never travels back
    run(fs.push())
    assert not (gateway.root / "sub/dir/data.conflict-b.csv").exists()


def test_records_survive_a_restart(tree, gateway, tmp_path):
    records = tmp_path / "state" / "rec.json"
    fs = folder_sync(tree, gateway, max_bytes=10_000_000, records=records)
    run(fs.push())
    assert records.stat().st_mode & 0o777 == 0o600
    again = folder_sync(tree, gateway, max_bytes=10_000_000, records=records)
    run(again.pull())
    assert again.status()["conflicts"] == [] and again.pulled == 0


def test_the_gateway_refuses_paths_out_of_its_workspace(gateway):
    import requests

    h = gateway.headers
    for path in ("../x", "/etc", "a/../../b"):
        r = requests.post(
            gateway.url + "/api/accel/filesync/manifest", json={"path": path}, headers=h
        )
        assert r.status_code == 400 and "path" in r.json()["message"], r.text
    r = requests.put(gateway.url + "/api/accel/filesync/files?path=x", data=b"not a tar", headers=h)
    assert r.status_code == 400 and "tar" in r.json()["message"]
    r = requests.post(gateway.url + "/api/accel/filesync/manifest", json={"path": ""})
    assert r.status_code in (401, 403)


def test_rules_verdicts_are_kept_and_a_changed_gitignore_is_read_again(tree):
    rules = SyncRules(tree, "sub/dir", max_bytes=10_000_000)
    first = rules.select()
    assert "run.log" not in first.files and "data.csv" in first.files
    assert rules.verdicts, "the patterns' answers are kept for the next scan"
    time.sleep(0.01)
    (tree / "sub/dir/.gitignore").write_text("*.csv\n")  # the user edits it mid-session
    (tree / "sub/dir/new.txt").write_text("new\n")
    again = rules.select()
    assert "data.csv" not in again.files, "the new .gitignore applies"
    assert "run.log" in again.files and "new.txt" in again.files
    assert sorted(again.secrets) == sorted(first.secrets)
