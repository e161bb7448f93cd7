"""Metrics fan-out: N watchers of one runtime's metrics stream (1 vs 50).

For each path (through the server's /accel/runtimes/{name}/metrics/stream, and straight to the
gateway's /api/accel/metrics/stream) N websocket clients read for `seconds`. Measured:
- upstream samples: distinct sample timestamps seen by all watchers together (each sample the
  gateway takes carries its own `time`; one sampler per gateway means this follows the clock,
  not N);
- samples each watcher received (median);
- gateway and server CPU seconds over the window (psutil, the processes' own user+system time).
"""

from __future__ import annotations

import json
import statistics
import threading
import time

import psutil
import websocket

from tests.support.procs import Proc


def cpu_seconds(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def watch(url: str, token: str, n: int, seconds: float) -> tuple[int, list[int], int]:
    """n watchers for `seconds`: (distinct upstream samples, per-watcher counts, errors)."""
    times: list[set] = [set() for _ in range(n)]
    counts = [0] * n
    errors = [0]
    start = threading.Barrier(n + 1)
    stop_at = [0.0]

    def run(i):
        try:
            ws = websocket.create_connection(
                url, header=[f"Authorization: token {token}"], timeout=10
            )
        except Exception:  # noqa: BLE001 - counted
            errors[0] += 1
            start.wait()
            return
        start.wait()
        try:
            while time.monotonic() < stop_at[0]:
                ws.settimeout(max(0.05, stop_at[0] - time.monotonic()))
                try:
                    msg = json.loads(ws.recv())
                except websocket.WebSocketTimeoutException:
                    break
                if time.monotonic() >= stop_at[0]:
                    break
                if "time" in msg:
                    times[i].add(msg["time"])
                    counts[i] += 1
                else:
                    errors[0] += 1
        finally:
            ws.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    stop_at[0] = time.monotonic() + 3600
    for t in threads:
        t.start()
    start.wait()  # everyone connected (or failed): the window starts now
    stop_at[0] = time.monotonic() + seconds
    for t in threads:
        t.join(seconds + 15)
    return len(set().union(*times)), counts, errors[0]


def measure(
    server: Proc,
    gateway: Proc,
    runtime: str,
    watchers=(1, 50),
    seconds: float = 5.0,
    interval: float = 0.5,
) -> list[dict]:
    """One row per (path, N). The gateway should run with MetricsSampler.interval=interval."""
    paths = [
        (
            "server /accel/.../metrics/stream",
            server.url.replace("http", "ws", 1) + f"/accel/runtimes/{runtime}/metrics/stream",
            server.token,
        ),
        (
            "gateway /api/accel/metrics/stream",
            gateway.url.replace("http", "ws", 1) + "/api/accel/metrics/stream",
            gateway.token,
        ),
    ]
    rows = []
    for label, url, token in paths:
        for n in watchers:
            time.sleep(2 * interval)  # the previous watchers' sampler has stopped
            g0, s0, t0 = cpu_seconds(gateway.pid), cpu_seconds(server.pid), time.monotonic()
            upstream, counts, errors = watch(url, token, n, seconds)
            elapsed = time.monotonic() - t0
            rows.append(
                {
                    "path": label,
                    "watchers": n,
                    "seconds": round(elapsed, 2),
                    "upstream_samples": upstream,
                    "expected_samples": round(seconds / interval),
                    "per_watcher_median": statistics.median(counts) if counts else 0,
                    "errors": errors,
                    "gateway_cpu_s": round(cpu_seconds(gateway.pid) - g0, 3),
                    "server_cpu_s": round(cpu_seconds(server.pid) - s0, 3)
                    if "server" in label
                    else None,
                }
            )
    return rows


def print_table(rows: list[dict]) -> None:
    print(
        "\n| path | watchers | upstream samples (expected) | per watcher | gateway CPU s | server CPU s | errors |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        srv = "-" if r["server_cpu_s"] is None else f"{r['server_cpu_s']:.2f}"
        print(
            f"| {r['path']} | {r['watchers']} | {r['upstream_samples']} ({r['expected_samples']}) | "
            f"{r['per_watcher_median']:.0f} | {r['gateway_cpu_s']:.2f} | {srv} | {r['errors']} |"
        )
