"""Mount throughput: a file through a gateway's mount vs direct disk vs s3fs, on 127.0.0.1.

    python -m bench.mounts_bench [--size-mib 200] [--json bench/results/mounts.json]

Targets: direct disk; rclone FUSE mount of a local folder and of S3 (moto_server); sync mode to
S3; s3fs straight to moto. Per target: write (one file, 8 MiB blocks, fsync at the end), the time
until it is durable on the remote (the mount's flush), cold read (data not cached locally) and warm
read. Bounded: one file of --size-mib per target. Every process started is stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from accel_gateway.mounts.fuse import fuse_problem

from tests.support.procs import free_port, start_gateway, stop, wait_http

BLOCK = 8 << 20
KEY, SECRET = "benchkey", "bench-" + secrets.token_hex(8)


def write(path: Path, size: int, block: bytes) -> float:
    t = time.perf_counter()
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - t


def read(path: Path) -> float:
    t = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.read(BLOCK):
            pass
    return time.perf_counter() - t


def mbps(size: int, seconds: float | None) -> str:
    return f"{'-':>8}" if seconds is None else f"{size / seconds / 1e6:8.0f}"


def s3_config(url: str) -> dict:
    return {
        "type": "s3",
        "provider": "Other",
        "endpoint": url,
        "region": "us-east-1",
        "access_key_id": KEY,
        "secret_access_key": SECRET,
        "force_path_style": True,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=200)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    size = args.size_mib << 20
    block = os.urandom(BLOCK)
    rows: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="mounts-bench-"))
    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    conf = work / "config.json"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"MountManager": {"state_dir": str(work / "state"), "write_back": 2.0}}, f)
    gw = None
    try:
        wait_http(url + "/", timeout=30, proc=moto)
        import boto3
        import s3fs

        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
        )
        s3.create_bucket(Bucket="bench")
        gw = start_gateway(work / "gw", f"--config={conf}")

        def row(name, w, durable, cold, warm):
            rows.append(
                {
                    "target": name,
                    "write_s": w,
                    "durable_s": durable,
                    "cold_read_s": cold,
                    "warm_read_s": warm,
                }
            )
            print(f"  {name}: done", file=sys.stderr, flush=True)

        # direct disk
        disk = work / "disk"
        disk.mkdir()
        w = write(disk / "f.bin", size, block)
        row("direct disk", w, w, None, read(disk / "f.bin"))

        def through_mount(name, source, config, mode, seed_cold):
            body = {"source": source, "mount_point": name.replace(" ", "_"), "mode": mode}
            if config:
                body["config"] = config
            r = gw.api("POST", "/api/accel/mounts", json=body, timeout=600)
            r.raise_for_status()
            mid, mp = r.json()["id"], Path(r.json()["path"])
            w = write(mp / "f.bin", size, block)
            t = time.perf_counter()
            gw.api("POST", f"/api/accel/mounts/{mid}/flush", timeout=600).raise_for_status()
            durable = w + time.perf_counter() - t
            cold = None
            if seed_cold:  # an object written behind the mount's back: not in its cache
                seed_cold()
                gw.api("POST", f"/api/accel/mounts/{mid}/refresh", timeout=600)
                cold = read(mp / "cold.bin")
            warm = read(mp / "f.bin")
            gw.api("DELETE", f"/api/accel/mounts/{mid}", timeout=600)
            return w, durable, cold, warm

        def seed_s3(prefix):
            def put():
                s3.upload_file(str(disk / "f.bin"), "bench", f"{prefix}cold.bin")

            return put

        fuse = fuse_problem() is None
        if fuse:
            local = work / "remote"
            local.mkdir()

            def seed_local():
                subprocess.run(["cp", str(disk / "f.bin"), str(local / "cold.bin")], check=True)

            row(
                "rclone mount, local folder",
                *through_mount("fuse local", str(local), None, "fuse", seed_local),
            )
            row(
                "rclone mount, S3 (moto)",
                *through_mount(
                    "fuse s3", "s3:bench/fuse", s3_config(url), "fuse", seed_s3("fuse/")
                ),
            )
        else:
            print(f"  FUSE targets skipped: {fuse_problem()}", file=sys.stderr)
        row(
            "sync mode, S3 (moto)",
            *through_mount("sync s3", "s3:bench/sync", s3_config(url), "sync", None),
        )

        # s3fs straight to moto: write = upload on close; reads fetch from the server.
        fs = s3fs.S3FileSystem(
            key=KEY, secret=SECRET, client_kwargs={"endpoint_url": url, "region_name": "us-east-1"}
        )
        t = time.perf_counter()
        with fs.open("bench/s3fs/f.bin", "wb", block_size=BLOCK) as f:
            for _ in range(size // BLOCK):
                f.write(block)
        w = time.perf_counter() - t
        t = time.perf_counter()
        with fs.open("bench/s3fs/f.bin", "rb", block_size=BLOCK) as f:
            while f.read(BLOCK):
                pass
        row("s3fs (moto)", w, w, time.perf_counter() - t, None)
    finally:
        if gw:
            gw.stop()
        stop(moto)

    print(f"\n{args.size_mib} MiB file, MB/s (durable: until on the remote)")
    print(f"{'target':28} {'write':>8} {'durable':>8} {'cold rd':>8} {'warm rd':>8}")
    for r in rows:
        print(
            f"{r['target']:28} {mbps(size, r['write_s'])} {mbps(size, r['durable_s'])} "
            f"{mbps(size, r['cold_read_s'])} {mbps(size, r['warm_read_s'])}"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"size_mib": args.size_mib, "rows": rows}, indent=1))
    subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
