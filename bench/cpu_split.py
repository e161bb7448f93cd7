"""Where the CPU goes on each path: CPU seconds per process for the same cells.

    python -m bench.cpu_split [--reps 5] [--profile DIR [--rate 200] [--native]]
    python -m bench.cpu_split --floor     # what one loopback TCP hop costs at the least

For direct ZMQ, stock Kernel Gateway and the jupyterlab-accel full path, runs `reps` x (the
50 x 1 MB stream cell) and `reps` x 30 `1+1` round trips, and reads psutil user+system CPU time of
each process involved (client = this process, kernel, gateway, server) before and after, and
prints the gateway's and the server's CPU per MB of stream output with the share spent in the
OS kernel (system time: socket copies and loopback TCP, which no Python change removes). With
--profile, py-spy records the gateway and the server during the stream cells (py-spy from PyPI).
On a 2-core machine every extra process hop competes with kernel and client for the same cores:
this table shows how much each hop costs.

--floor measures the least CPU a hop can cost here: a forked process that relays 250 x 1 MB
between two loopback TCP sockets with nothing in Python but the loop, once copying through
user space (recv_into + sendall: what any user-space relay does at least) and once with
os.splice through a pipe (the payload never leaves the kernel).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
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


def _forward(mode: str, listener: socket.socket, sink_port: int, total: int, out) -> None:
    src, _ = listener.accept()
    dst = socket.create_connection(("127.0.0.1", sink_port))
    dst.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = resource.getrusage(resource.RUSAGE_SELF)
    left = total
    if mode == "splice":
        r, w = os.pipe()
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)
        while left:
            n = os.splice(src.fileno(), w, min(left, 1 << 20))
            if not n:
                break
            left -= n
            while n:
                n -= os.splice(r, dst.fileno(), n)
    else:
        view = memoryview(bytearray(1_000_000))
        while left:
            k = src.recv_into(view, min(left, len(view)))
            if not k:
                break
            dst.sendall(view[:k])
            left -= k
    t1 = resource.getrusage(resource.RUSAGE_SELF)
    out.write(f"{t1.ru_utime - t0.ru_utime} {t1.ru_stime - t0.ru_stime}")
    out.flush()


def hop_floor(mode: str, messages: int = 250, size: int = 1_000_000) -> tuple[float, float]:
    """(user, system) ms of CPU per MB that a bare relay process spends forwarding."""
    sink, mid = socket.create_server(("127.0.0.1", 0)), socket.create_server(("127.0.0.1", 0))
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the relay
        try:
            os.close(rfd)
            with os.fdopen(wfd, "w") as out:
                _forward(mode, mid, sink.getsockname()[1], messages * size, out)
        finally:
            os._exit(0)
    os.close(wfd)
    src = socket.create_connection(mid.getsockname())
    src.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    dst, _ = sink.accept()

    def drain():
        buf, got = bytearray(1 << 20), 0
        while got < messages * size and (k := dst.recv_into(buf)):
            got += k

    reader = threading.Thread(target=drain)
    reader.start()
    data = os.urandom(size)
    for _ in range(messages):
        src.sendall(data)
    reader.join()
    with os.fdopen(rfd) as inp:
        user, system = (float(x) for x in inp.read().split())
    os.waitpid(pid, 0)
    for s in (src, dst, sink, mid):
        s.close()
    mb = messages * size / 1e6
    return 1000 * user / mb, 1000 * system / mb


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
    ap.add_argument("--floor", action="store_true", help="only the bare-relay floor, 3 runs")
    args = ap.parse_args(argv)
    if args.floor:
        print("| bare relay, 250 x 1 MB | ms CPU per MB (user + system), 3 runs |\n|---|---|")
        for mode in ("copy", "splice"):
            runs = [hop_floor(mode) for _ in range(3)]
            cells = ", ".join(f"{u + s:.2f} ({u:.2f} + {s:.2f})" for u, s in runs)
            print(f"| {mode} | {cells} |")
        return [1]
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
