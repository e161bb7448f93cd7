"""Markdown tables from a transport run's JSON: python -m bench.tables RESULT.json"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def render(d: dict) -> str:
    out = []
    if d.get("rows"):
        out += [
            "| path | kernels up | start (s) | start / stock KG | RTT median (ms) | RTT p99 (ms) | "
            "RTT / direct | stream MB/s | stream / direct | 50 MB message |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in d["rows"]:
            out.append(
                f"| {r['target']} | {r['starts_ok']} | {r['start_s']:.2f} | {r['start_ratio_kg']:.2f}x | "
                f"{r['rtt_ms']:.1f} | {r['rtt_p99_ms']:.1f} | {r['rtt_ratio']:.2f}x | "
                f"{r['stream_MBps']:.0f} | {r['stream_ratio']:.2f}x | {r['big_delivered']} |"
            )
        out.append("")
    if d.get("change"):
        base = d["change"][0]["total_s"]
        out += [
            "| change runtime | switched | PATCH (s) | PATCH -> first result (s) | vs stock |",
            "|---|---|---|---|---|",
        ]
        for r in d["change"]:
            out.append(
                f"| {r['target']} | {r['ok']} | {r['patch_s']:.2f} | {r['total_s']:.2f} | "
                f"{r['total_s'] / base:.2f}x |"
            )
        out.append("")
    if d.get("fanout"):
        out += [
            "| metrics stream | watchers | seconds | upstream samples (expected) | per watcher | "
            "gateway CPU (s) | server CPU (s) | errors |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in d["fanout"]:
            srv = "-" if r["server_cpu_s"] is None else f"{r['server_cpu_s']:.2f}"
            out.append(
                f"| {r['path']} | {r['watchers']} | {r['seconds']:.1f} | {r['upstream_samples']} "
                f"({r['expected_samples']}) | {r['per_watcher_median']:.0f} | {r['gateway_cpu_s']:.2f} | "
                f"{srv} | {r['errors']} |"
            )
        out.append("")
    if d.get("upload"):
        up = d["upload"]
        out += [
            f"| upload {up['size'] / 1e9:.2f} GB, JupyterLab chunks | done | MB/s | "
            "local server RSS growth (MB) | gateway RSS growth (MB) |",
            "|---|---|---|---|---|",
        ]
        for r in up["rows"]:
            gw = "-" if r["gateway_rss_growth_mb"] is None else f"{r['gateway_rss_growth_mb']:.0f}"
            out.append(
                f"| {r['target']} | {r['ok']} | {r['MBps']:.0f} | {r['server_rss_growth_mb']:.0f} | {gw} |"
            )
        out.append("")
    if "enterprise_gateway" in d:
        out.append(f"Enterprise Gateway: {d['enterprise_gateway']}.")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(render(json.loads(Path(sys.argv[1]).read_text())))
