"""How long a notebook's folder holds back the first cell on a new runtime (issue: the notebook's
files follow it). For folders of many small files and one of a few big ones: the first push (all
files), a second push with nothing changed (what a later kernel start costs), and a pull of 10
new files, on 127.0.0.1 and through the link emulator's profiles.

    python -m bench.filesync [--profiles direct,region] [--counts 10,1000,10000] [--big-mb 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from tornado.httpclient import HTTPRequest

from bench.linkemu import LinkProcess
from jupyterlab_accel.filesync import FileSync
from jupyterlab_accel.filesync.engine import FolderSync, RemoteFolder
from jupyterlab_accel.filesync.rules import SyncRules
from tests.support.procs import start_gateway


class At:
    def __init__(self, url: str, token: str):
        self.name, self.url, self.token = "bench", url, token

    def request(self, path, method="GET", *, timeout=600, headers=None, **kw):
        headers = dict(headers or {}, Authorization=f"token {self.token}")
        return HTTPRequest(
            self.url + path, method=method, headers=headers, request_timeout=timeout, **kw
        )


def make_folder(root: Path, count: int, size: int) -> int:
    nb = root / "nb"
    for i in range(count):
        d = nb / f"d{i // 500}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.txt").write_bytes(os.urandom(size))
    return count * size


async def measure(url: str, token: str, root: Path, gw_root: Path) -> dict:
    fs = FileSync(root_dir=str(root), state_dir=None)
    rules = SyncRules(root, "nb", max_bytes=1 << 40)
    sync = FolderSync(rules, RemoteFolder(At(url, token), fs.fetch), "bench")
    t0 = time.perf_counter()
    await sync.push()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    await sync.push()
    unchanged = time.perf_counter() - t0
    for i in range(10):
        (gw_root / "nb" / f"new{i}.bin").write_bytes(os.urandom(100_000))
    t0 = time.perf_counter()
    await sync.pull()
    pull = time.perf_counter() - t0
    return {"first_push_s": first, "unchanged_push_s": unchanged, "pull_10_new_s": pull}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--profiles", default="direct,region")
    ap.add_argument("--counts", default="10,1000,10000")
    ap.add_argument("--small-bytes", type=int, default=2000)
    ap.add_argument(
        "--big-mb", type=int, default=1000, help="total of the big-files case (0: skip)"
    )
    ap.add_argument("--json", help="write the rows here too")
    args = ap.parse_args(argv)
    cases = [(int(c), args.small_bytes) for c in args.counts.split(",") if c]
    if args.big_mb:
        cases.append((10, args.big_mb * 1_000_000 // 10))
    rows = []
    for count, size in cases:
        for profile in args.profiles.split(","):
            tmp = Path(tempfile.mkdtemp(prefix="bench-filesync-"))
            gw = start_gateway(tmp / "gw")
            link = None
            try:
                total = make_folder(tmp / "root", count, size)
                url = gw.url
                if profile != "direct":
                    link = LinkProcess(gw.port, profile=profile)
                    url = link.url
                r = asyncio.run(measure(url, gw.token, tmp / "root", gw.root))
                r.update(profile=profile, files=count, total_mb=round(total / 1e6, 1))
                rows.append(r)
                print(json.dumps(r), flush=True)
            finally:
                if link is not None:
                    link.close()
                gw.stop()
                shutil.rmtree(tmp, ignore_errors=True)
    print("\n| files | total MB | link | first push s | unchanged push s | pull of 10 new s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['files']} | {r['total_mb']} | {r['profile']} | {r['first_push_s']:.2f} | "
            f"{r['unchanged_push_s']:.2f} | {r['pull_10_new_s']:.2f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
