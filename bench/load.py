"""Load benchmark: one gateway with many kernels and many clients watching metrics.

    python -m bench.load                       # 50 kernels, 20 watchers, 60 s (the issue's figure)
    python -m bench.load --kernels 10 --watchers 10 --duration 15 --json out.json

Starts a real gateway and a real jupyter_server with jupyterlab_accel (runtime "a" = the gateway)
on 127.0.0.1, starts the kernels on the gateway, then for `duration` seconds runs the watchers
(half on the gateway's /api/accel/metrics/stream, half through the server's
/accel/runtimes/a/metrics/stream) while a REST poller lists kernels and metrics snapshots through
the server. Counts errors (failed connects, closed streams, gaps over 5 intervals, bad JSON,
samples missing kernels, failed REST calls), and samples the RSS of the gateway and server
processes (kernels not included) every second. Everything is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests
import websocket

from tests.support.procs import Proc, start_gateway, start_server

MB = 1e6


@dataclass
class Watcher:
    name: str
    url: str
    token: str
    expect_kernels: int
    samples: int = 0
    errors: list = field(default_factory=list)
    max_gap: float = 0.0

    def run(self, stop: threading.Event, interval: float) -> None:
        try:
            ws = websocket.create_connection(
                self.url, header=[f"Authorization: token {self.token}"], timeout=10
            )
        except Exception as e:
            self.errors.append(f"connect: {e}")
            return
        ws.settimeout(5 * interval + 2)
        last = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    sample = json.loads(ws.recv())
                except websocket.WebSocketTimeoutException:
                    self.errors.append(f"no sample for {5 * interval + 2:.0f} s")
                    continue
                except (websocket.WebSocketException, OSError) as e:
                    self.errors.append(f"stream closed: {e!r}")
                    return
                except ValueError as e:
                    self.errors.append(f"bad JSON: {e}")
                    continue
                now = time.monotonic()
                if self.samples:
                    self.max_gap = max(self.max_gap, now - last)
                last = now
                self.samples += 1
                if len(sample.get("kernels", [])) < self.expect_kernels or "host" not in sample:
                    self.errors.append(f"sample lists {len(sample.get('kernels', []))} kernels")
        finally:
            ws.close()


def _rss(pid: int) -> float:
    try:
        return psutil.Process(pid).memory_info().rss / MB
    except psutil.NoSuchProcess:
        return float("nan")


def _start_kernels(gw: Proc, n: int) -> list[str]:
    def one(_):
        r = gw.api("POST", "/api/kernels", json={"name": "python3"}, timeout=180)
        r.raise_for_status()
        return r.json()["id"]

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(n)))


def run(
    kernels: int = 50,
    watchers: int = 20,
    duration: float = 60,
    interval: float = 1.0,
    workdir: Path | None = None,
    log=print,
) -> dict:
    own_tmp = None
    if workdir is None:
        own_tmp = tempfile.TemporaryDirectory(prefix="accel-load-")
        workdir = Path(own_tmp.name)
    procs: list[Proc] = []
    try:
        gw = start_gateway(
            workdir / "gw",
            f"--MetricsSampler.interval={interval}",
            "--KernelLimits.idle_timeout=0",
            "--KernelLimits.max_lifetime=0",
        )
        procs.append(gw)
        cfg = workdir / "server.json"
        cfg.write_text(
            json.dumps(
                {
                    "RuntimeRegistry": {
                        "runtimes": [{"name": "a", "url": gw.url, "token": gw.token}]
                    },
                    "AccelState": {"state_dir": str(workdir / "state")},
                    "EmbeddedGateway": {"enabled": False},
                }
            )
        )
        server = start_server(workdir / "server", f"--config={cfg}")
        procs.append(server)
        t0 = time.monotonic()
        ids = _start_kernels(gw, kernels)
        start_s = time.monotonic() - t0
        log(f"started {len(ids)} kernels in {start_s:.1f} s")

        ws = {
            "gateway": gw.url.replace("http", "ws", 1) + "/api/accel/metrics/stream",
            "server": server.url.replace("http", "ws", 1) + "/accel/runtimes/a/metrics/stream",
        }
        ws_list = [
            Watcher(f"{side}-{i}", ws[side], (gw if side == "gateway" else server).token, kernels)
            for i in range(watchers)
            for side in (("gateway", "server")[i % 2],)
        ]
        stop = threading.Event()
        rss: list[tuple[float, float, float]] = []
        rest = {"calls": 0, "errors": [], "latency": []}

        def sample_rss():
            while not stop.wait(1.0):
                rss.append((time.monotonic() - t1, _rss(gw.pid), _rss(server.pid)))

        def poll_rest():
            while not stop.wait(2.0):
                for proc, path in (
                    (server, "/accel/runtimes/a/metrics"),
                    (server, "/accel/sessions"),
                    (gw, "/api/accel/kernels"),
                ):
                    t = time.monotonic()
                    try:
                        r = proc.api("GET", path, timeout=10)
                        ok = r.status_code == 200
                    except requests.RequestException as e:
                        ok, r = False, e
                    rest["calls"] += 1
                    rest["latency"].append(time.monotonic() - t)
                    if not ok:
                        rest["errors"].append(f"{path}: {getattr(r, 'status_code', r)}")

        t1 = time.monotonic()
        rss.append((0.0, _rss(gw.pid), _rss(server.pid)))
        threads = [
            threading.Thread(target=w.run, args=(stop, interval), daemon=True) for w in ws_list
        ]
        threads += [
            threading.Thread(target=sample_rss, daemon=True),
            threading.Thread(target=poll_rest, daemon=True),
        ]
        for t in threads:
            t.start()
        stop.wait(duration)
        stop.set()
        for t in threads:
            t.join(timeout=5 * interval + 10)
        elapsed = time.monotonic() - t1
        rss.append((elapsed, _rss(gw.pid), _rss(server.pid)))
        listed = len(gw.api("GET", "/api/accel/kernels").json())
        alive = [p.proc.poll() is None for p in procs]

        errors = [e for w in ws_list for e in w.errors] + rest["errors"]
        if listed != kernels:
            errors.append(f"gateway lists {listed} kernels, expected {kernels}")
        if not all(alive):
            errors.append("a process died")
        third = [r for r in rss if r[0] >= elapsed / 3] or rss
        result = {
            "kernels": kernels,
            "watchers": watchers,
            "duration_s": round(elapsed, 1),
            "interval_s": interval,
            "kernel_start_s": round(start_s, 1),
            "samples_per_watcher": {
                "min": min(w.samples for w in ws_list),
                "max": max(w.samples for w in ws_list),
            },
            "max_gap_s": round(max(w.max_gap for w in ws_list), 2),
            "rest_calls": rest["calls"],
            "rest_p50_ms": round(1000 * statistics.median(rest["latency"]), 1)
            if rest["latency"]
            else None,
            "rest_max_ms": round(1000 * max(rest["latency"]), 1) if rest["latency"] else None,
            "errors": len(errors),
            "error_samples": errors[:10],
        }
        for i, who in ((1, "gateway"), (2, "server")):
            series = [r[i] for r in rss]
            result[f"{who}_rss_mb"] = {
                "start": round(series[0], 1),
                "end": round(series[-1], 1),
                "max": round(max(series), 1),
                "growth": round(series[-1] - series[0], 1),
                # growth over the last two thirds: steady state, after connections are set up
                "steady_growth": round(third[-1][i] - third[0][i], 1),
            }
        result["rss_timeline"] = [(round(t, 1), round(g, 1), round(s, 1)) for t, g, s in rss[::5]]
        return result
    finally:
        for p in reversed(procs):
            p.stop()
        if own_tmp:
            own_tmp.cleanup()


def table(res: dict) -> str:
    g, s = res["gateway_rss_mb"], res["server_rss_mb"]
    rows = [
        (
            "kernels / watchers / duration",
            f"{res['kernels']} / {res['watchers']} / {res['duration_s']} s",
        ),
        ("sample interval", f"{res['interval_s']} s"),
        ("kernel start (all, 4 at a time)", f"{res['kernel_start_s']} s"),
        (
            "samples per watcher (min-max)",
            f"{res['samples_per_watcher']['min']}-{res['samples_per_watcher']['max']}",
        ),
        ("largest gap between samples", f"{res['max_gap_s']} s"),
        (
            "REST calls during the run",
            f"{res['rest_calls']} (p50 {res['rest_p50_ms']} ms, max {res['rest_max_ms']} ms)",
        ),
        ("errors", str(res["errors"])),
        ("gateway RSS start -> end (max)", f"{g['start']} -> {g['end']} MB ({g['max']} MB)"),
        ("gateway RSS growth (all / last 2/3)", f"{g['growth']} / {g['steady_growth']} MB"),
        ("server RSS start -> end (max)", f"{s['start']} -> {s['end']} MB ({s['max']} MB)"),
        ("server RSS growth (all / last 2/3)", f"{s['growth']} / {s['steady_growth']} MB"),
    ]
    w = max(len(k) for k, _ in rows)
    lines = [f"| {'measure'.ljust(w)} | value |", f"|{'-' * (w + 2)}|-------|"]
    lines += [f"| {k.ljust(w)} | {v} |" for k, v in rows]
    lines.append("")
    lines.append(
        "RSS timeline (s, gateway MB, server MB): "
        + ", ".join(f"({t}, {a}, {b})" for t, a, b in res["rss_timeline"])
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernels", type=int, default=50)
    ap.add_argument("--watchers", type=int, default=20)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--interval", type=float, default=1.0, help="gateway metrics interval (s)")
    ap.add_argument("--json", type=Path, help="write the result here too")
    a = ap.parse_args(argv)
    res = run(a.kernels, a.watchers, a.duration, a.interval)
    print(table(res))
    if res["error_samples"]:
        print("errors:", *res["error_samples"], sep="\n  ")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1))
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
