"""The phases after the transport table: change runtime, metrics fan-out, upload.

One set of processes serves all three: jupyterlab-accel's server with two of our gateways
(runtimes "a" and "b"), and a stock jupyter_server (no extensions) with a second local kernelspec.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from bench import fanout
from bench.change_runtime import ChangeTarget, gateway_has_kernel, write_second_kernelspec
from bench.upload import UploadTarget
from tests.support.procs import start_gateway, start_server

FANOUT_INTERVAL = 0.5


def _median(xs):
    return statistics.median(xs) if xs else float("nan")


def run(workdir: Path, wanted: set[str], args, start_accel_server) -> dict:
    from bench.transport import parse_size

    nocap = "--ZMQChannelsWebsocketConnection.iopub_data_rate_limit=0"
    data = workdir / "stock-data"
    write_second_kernelspec(data)
    procs = []
    out: dict = {}
    try:
        gw_a = start_gateway(workdir / "gw-a", f"--MetricsSampler.interval={FANOUT_INTERVAL}")
        procs.append(gw_a)
        gw_b = start_gateway(workdir / "gw-b")
        procs.append(gw_b)
        accel = start_accel_server(workdir / "accel", {"a": gw_a, "b": gw_b})
        procs.append(accel)
        stock = start_server(
            workdir / "stock", nocap, env={"JUPYTER_NO_CONFIG": "1", "JUPYTER_PATH": str(data)}
        )
        procs.append(stock)

        if "change" in wanted:
            targets = [
                ChangeTarget(
                    "stock jupyter_server (python3 -> python3-b, local)",
                    stock,
                    "python3",
                    "python3-b",
                ),
                ChangeTarget(
                    "jupyterlab-accel (runtime a -> runtime b)",
                    accel,
                    "accel--a--python3",
                    "accel--b--python3",
                    where=lambda k: "b" if gateway_has_kernel(gw_b, k) else None,
                ),
            ]
            for r in range(args.rounds):
                for t in targets:
                    t.measure()
            out["change"] = [
                {
                    "target": t.name,
                    "ok": f"{t.samples['ok']}/{t.samples['runs']}",
                    "total_s": _median(t.samples["total"]),
                    "patch_s": _median(t.samples["patch"]),
                    "samples": t.samples,
                }
                for t in targets
            ]
            base = out["change"][0]["total_s"]
            print(
                "\n| change runtime | switched | PATCH (s) | PATCH -> first result (s) | vs stock |"
            )
            print("|---|---|---|---|---|")
            for row in out["change"]:
                print(
                    f"| {row['target']} | {row['ok']} | {row['patch_s']:.2f} | {row['total_s']:.2f} | "
                    f"{row['total_s'] / base:.2f}x |"
                )
            print("round change done", file=sys.stderr, flush=True)

        if "fanout" in wanted:
            out["fanout"] = fanout.measure(
                accel, gw_a, "a", seconds=args.fanout_seconds, interval=FANOUT_INTERVAL
            )
            fanout.print_table(out["fanout"])

        if "upload" in wanted:
            size = parse_size(args.upload_size)
            targets = [
                UploadTarget(
                    "stock jupyter_server /api/contents",
                    stock,
                    "/api/contents",
                    {"server": stock.pid},
                ),
                UploadTarget(
                    "jupyterlab-accel /accel/runtimes/a/contents",
                    accel,
                    "/accel/runtimes/a/contents",
                    {"server": accel.pid, "gateway": gw_a.pid},
                ),
            ]
            for _ in range(args.upload_rounds):
                for t in targets:
                    t.measure(size)
            out["upload"] = {"size": size, "rows": []}
            print(
                f"\n| upload {size / 1e9:.2f} GB, chunked | done | MB/s | server RSS growth (MB) | gateway RSS growth (MB) |"
            )
            print("|---|---|---|---|---|")
            for t in targets:
                s = t.samples
                growth = lambda k: max(
                    (g.get(k, 0) for g in s["rss_growth_mb"]), default=float("nan")
                )
                row = {
                    "target": t.name,
                    "ok": f"{s['ok']}/{s['runs']}",
                    "MBps": _median(s["MBps"]),
                    "server_rss_growth_mb": growth("server"),
                    "gateway_rss_growth_mb": growth("gateway") if "gateway" in t.watch else None,
                    "errors": s["errors"],
                }
                out["upload"]["rows"].append(row)
                gw = (
                    "-"
                    if row["gateway_rss_growth_mb"] is None
                    else f"{row['gateway_rss_growth_mb']:.0f}"
                )
                print(
                    f"| {t.name} | {row['ok']} | {row['MBps']:.0f} | {row['server_rss_growth_mb']:.0f} | {gw} |"
                )
                for e in s["errors"]:
                    print(f"  {t.name}: {e}", file=sys.stderr)
    finally:
        for p in reversed(procs):
            p.stop()
    return out
