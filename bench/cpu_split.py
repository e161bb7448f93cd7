"""Where the CPU goes on each path: CPU seconds per process for the same cells.

    python -m bench.cpu_split [--reps 5] [--profile DIR]

For direct ZMQ, stock Kernel Gateway and the jupyterlab-accel full path, runs `reps` x (the
50 x 1 MB stream cell) and `reps` x 30 `1+1` round trips, and reads psutil user+system CPU time of
each process involved (client = this process, kernel, gateway, server) before and after, and
prints the gateway's and the server's CPU per MB of stream output with the share spent in the
OS kernel (system time: socket copies and loopback TCP, which no Python change removes). With
--profile, py-spy records the gateway and the server during the stream cells (py-spy from PyPI).
On a 2-core machine every extra process hop competes with kernel and client for the same cores:
this table shows how much each hop costs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.transport import STREAM_BYTES, STREAM_CELL, WsKernel, ZmqKernel, start_accel_server
from tests.support.procs import start_gateway, start_stock_gateway


def cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def system(pid: int) -> float:
    return psutil.Process(pid).cpu_times().system


def kernel_pid(parent_pid: int) -> int | None:
    """The ipykernel child of a server/gateway process (the newest one)."""
    kids = [
        p
        for p in psutil.Process(parent_pid).children(recursive=True)
        if "ipykernel" in " ".join(p.cmdline())
    ]
    return max(kids, key=lambda p: p.create_time()).pid if kids else None


def split(
    label: str,
    kernel,
    pids: dict[str, int],
    reps: int,
    profile: Path | None,
    spy_args: tuple[str, ...] = ("-r", "200"),
) -> dict:
    pids = {"client": os.getpid(), **pids}
    out = {"path": label}
    for phase, code, n in (("stream", STREAM_CELL, reps), ("rtt", "1+1", 30 * reps)):
        spies = []
        if profile and phase == "stream":
            for name in ("gateway", "server"):
                if name in pids:
                    f = profile / f"{label.replace(' ', '_')}-{name}.txt"
                    spies.append(
                        subprocess.Popen(
                            [
                                "py-spy",
                                "record",
                                "-p",
                                str(pids[name]),
                                "-f",
                                "raw",
                                "-o",
                                str(f),
                                *spy_args,
                            ],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                    )
            time.sleep(1)
        before = {k: cpu(p) for k, p in pids.items()}
        before_sys = {k: system(p) for k, p in pids.items()}
        t0 = time.perf_counter()
        for _ in range(n):
            kernel.execute(code)
        wall = time.perf_counter() - t0
        for s in spies:
            s.send_signal(2)  # SIGINT: py-spy writes its file and exits
            s.wait(30)
        out[phase] = {"wall": wall, **{k: cpu(p) - before[k] for k, p in pids.items()}}
        out[phase]["system"] = {k: system(p) - before_sys[k] for k, p in pids.items()}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--profile", help="folder for py-spy raw profiles of gateway and server")
    ap.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    ap.add_argument(
        "--native", action="store_true", help="py-spy --native: C frames too (memcpy, syscalls)"
    )
    args = ap.parse_args(argv)
    spy_args = ("-r", str(args.rate), *(("--native",) if args.native else ()))
    profile = Path(args.profile) if args.profile else None
    if profile:
        profile.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="accel-cpu-") as tmp:
        tmp = Path(tmp)
        k = ZmqKernel()
        try:
            rows.append(
                split("direct ZMQ", k, {"kernel": k.km.provisioner.process.pid}, args.reps, None)
            )
        finally:
            k.close()
        nocap = "--ZMQChannelsWebsocketConnection.iopub_data_rate_limit=0"
        kg = start_stock_gateway(tmp / "kg", nocap)
        try:
            k = WsKernel(kg, "python3")
            rows.append(
                split(
                    "stock Kernel Gateway",
                    k,
                    {"kernel": kernel_pid(kg.pid), "gateway": kg.pid},
                    args.reps,
                    profile,
                    spy_args,
                )
            )
            k.close()
        finally:
            kg.stop()
        gw = start_gateway(tmp / "gw")
        server = start_accel_server(tmp / "accel", {"bench": gw})
        try:
            k = WsKernel(server, "accel--bench--python3")
            rows.append(
                split(
                    "jupyterlab-accel full path",
                    k,
                    {"kernel": kernel_pid(gw.pid), "gateway": gw.pid, "server": server.pid},
                    args.reps,
                    profile,
                    spy_args,
                )
            )
            k.close()
        finally:
            server.stop()
            gw.stop()
    names = ["client", "kernel", "gateway", "server"]
    for phase, what in (
        ("stream", f"{args.reps} x 50 MB stream"),
        ("rtt", f"{30 * args.reps} x 1+1"),
    ):
        print(f"\n| {what}: CPU seconds | wall | " + " | ".join(names) + " | total CPU |")
        print("|---|---|" + "---|" * len(names) + "---|")
        for r in rows:
            d = r[phase]
            cells = [f"{d[n]:.2f}" if n in d else "-" for n in names]
            total = sum(d[n] for n in names if n in d)
            print(f"| {r['path']} | {d['wall']:.2f} | " + " | ".join(cells) + f" | {total:.2f} |")
    mb = args.reps * STREAM_BYTES / 1e6
    print(f"\n| stream: ms CPU per MB (of which system) | {' | '.join(names)} |")
    print("|---|" + "---|" * len(names))
    for r in rows:
        d = r["stream"]
        cells = [
            f"{1000 * d[n] / mb:.2f} ({1000 * d['system'][n] / mb:.2f})" if n in d else "-"
            for n in names
        ]
        print(f"| {r['path']} | " + " | ".join(cells) + " |")
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
