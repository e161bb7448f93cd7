"""Plot the ratios of a transport run: python -m bench.plot RESULT.json [docs/benchmarks.png]

Three panels, one bar per path, with the issue's goal as a dashed line:
RTT median / direct ZMQ (lower is better, goal <= 1.3x), stream throughput / direct ZMQ (higher is
better, goal >= 0.8x), kernel start / stock Kernel Gateway (goal <= 1.05x).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SHORT = {
    "direct ZMQ": "direct ZMQ",
    "stock Kernel Gateway": "stock KG",
    "stock jupyter_server (local kernels)": "stock server\n(local)",
    "stock jupyter_server --gateway-url -> Kernel Gateway": "stock server\n--gateway-url",
    "Enterprise Gateway 3.3 (own venv)": "Enterprise\nGateway",
    "accel gateway (direct)": "accel gateway\n(direct)",
    "jupyterlab-accel full path": "jupyterlab-accel\nfull path",
}


def plot(result: dict, out: Path) -> None:
    rows = result["rows"]
    names = [SHORT.get(r["target"], r["target"]) for r in rows]
    kg = next((r for r in rows if r["target"] == "stock Kernel Gateway"), None)
    panels = [
        (
            "RTT median / direct ZMQ (lower is better)",
            [r["rtt_ratio"] for r in rows],
            1.3,
            "goal <= 1.3x",
        ),
        (
            "stream throughput / direct ZMQ (higher is better)",
            [r["stream_ratio"] or 0 for r in rows],
            0.8,
            "goal >= 0.8x",
        ),
    ]
    if kg:
        panels.append(
            (
                "kernel start / stock Kernel Gateway (lower is better)",
                [r["start_s"] / kg["start_s"] for r in rows],
                1.05,
                "goal <= 1.05x",
            )
        )
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.2 * len(panels)))
    for ax, (title, values, goal, label) in zip(axes, panels):
        colors = ["#d9822b" if "accel" in n else "#5c7080" for n in names]
        bars = ax.bar(names, values, color=colors)
        ax.axhline(goal, color="#c23030", linestyle="--", linewidth=1, label=label)
        ax.axhline(1.0, color="black", linewidth=0.5)
        for b, v in zip(bars, values):
            ax.annotate(
                f"{v:.2f}x",
                (b.get_x() + b.get_width() / 2, v),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_title(title, fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.set_ylim(0, max(values + [goal]) * 1.2)
    cpus = result.get("machine", {}).get("cpus")
    fig.suptitle(
        f"jupyterlab-accel vs the stock Jupyter stack, 127.0.0.1, {cpus} cores "
        "(orange: jupyterlab-accel)",
        fontsize=11,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[1] if len(argv) > 1 else "docs/benchmarks.png")
    plot(json.loads(Path(argv[0]).read_text()), out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
