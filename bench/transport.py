"""Transport benchmark: jupyterlab-accel against the stock Jupyter stack, side by side in one run.

    python -m bench.transport [--rounds 5] [--cells 30] [--upload-size 2G] [--json bench/results/transport.json]
    python -m bench.transport --quick        # CI-sized: 2 rounds, 10 cells, 64 MB upload

Phases (--phases): transport (start, RTT, 50x1 MB stream, one 50 MB message), change (PATCH a
session to a kernel on another runtime), fanout (metrics watchers 1 vs 50), upload (JupyterLab's
chunked contents upload). See docs/benchmarks.md.

Every target runs on 127.0.0.1 in this one process tree; rounds are interleaved (each round visits
every target in turn) so machine noise hits all targets alike. Ratios are against direct ZMQ
(jupyter_client to a local ipykernel). Websocket targets speak JupyterLab's v1 binary protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.manager import KernelManager

from bench import phases
from bench.enterprise_gateway import ensure_venv, start_enterprise_gateway
from tests.support.kernel_ws import KernelClient
from tests.support.procs import Proc, start_gateway, start_server, start_stock_gateway

STREAM_CELL = (
    "import sys\nfor _ in range(50):\n    sys.stdout.write('x' * 1_000_000); sys.stdout.flush()"
)
BIG_CELL = "print('y' * 50_000_000)"
STREAM_BYTES = 50 * 1_000_000
BIG_BYTES = 50_000_000


class ZmqKernel:
    """Direct ZMQ: jupyter_client talking to a local ipykernel, the floor every path is held to."""

    def __init__(self):
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel()
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def execute(self, code: str, timeout: float = 120) -> dict:
        msg_id = self.kc.execute(code)
        out = {"stdout": 0, "reply": None}
        deadline = time.monotonic() + timeout
        while True:  # iopub until idle, then the (already queued) execute_reply
            m = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            if m["msg_type"] == "stream":
                out["stdout"] += len(m["content"]["text"])
            elif m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                break
        while out["reply"] is None:
            r = self.kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if r["parent_header"].get("msg_id") == msg_id:
                out["reply"] = r["content"]
        return out

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


class WsKernel:
    """A kernel behind a REST + websocket endpoint (any of the server/gateway targets)."""

    def __init__(self, proc: Proc, kernel_name: str):
        self.proc = proc
        r = proc.api("POST", "/api/kernels", json={"name": kernel_name}, timeout=120)
        r.raise_for_status()
        self.id = r.json()["id"]
        self.kc = KernelClient(proc.url, self.id, proc.token, timeout=120, protocol="auto")
        try:
            self.execute("1", timeout=60)  # kernel ready and websocket warm
        except Exception:
            self.close()
            raise

    def execute(self, code: str, timeout: float = 120) -> dict:
        # Watchdog: a read can block past the client's own deadline (seen with the stock
        # gateway-url path mid-reconnect); shutting the socket down ends it as a failure.
        dog = threading.Timer(timeout + 5, self._abort)
        dog.start()
        try:
            r = self.kc.execute(code, timeout=timeout)
        finally:
            dog.cancel()
        return {"stdout": len(r["stdout"]), "reply": r["reply"]}

    def _abort(self):
        try:
            self.kc.ws.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass

    def close(self):
        self.kc.close()
        self.proc.api("DELETE", f"/api/kernels/{self.id}")


@dataclass
class Target:
    name: str
    open_kernel: object  # () -> kernel with execute/close
    procs: list = field(default_factory=list)
    samples: dict = field(
        default_factory=lambda: {"start": [], "rtt": [], "stream": [], "big_ok": 0, "big_runs": 0}
    )

    def close(self):
        for p in self.procs:
            p.stop()


def build_targets(workdir: Path, include: set[str], eg_venv: Path | None = None) -> list[Target]:
    targets = [Target("direct ZMQ", ZmqKernel)]
    stock_env = {"JUPYTER_NO_CONFIG": "1"}  # no extensions, stock managers
    # Lift the stock 1 MB/s iopub cap (it cuts a 50 MB output to ~2 MB): compare transports, not caps.
    nocap = "--ZMQChannelsWebsocketConnection.iopub_data_rate_limit=0"
    if "kg" in include:
        kg = start_stock_gateway(workdir / "kg", nocap)
        targets.append(Target("stock Kernel Gateway", lambda kg=kg: WsKernel(kg, "python3"), [kg]))
    if "server" in include:
        js = start_server(workdir / "js", nocap, env=stock_env)
        targets.append(
            Target(
                "stock jupyter_server (local kernels)", lambda js=js: WsKernel(js, "python3"), [js]
            )
        )
    if "gateway-url" in include:
        kg2 = start_stock_gateway(workdir / "kg2", nocap)
        jsg = start_server(
            workdir / "jsg",
            f"--gateway-url={kg2.url}",
            nocap,
            env={**stock_env, "JUPYTER_GATEWAY_AUTH_TOKEN": kg2.token},
        )
        targets.append(
            Target(
                "stock jupyter_server --gateway-url -> Kernel Gateway",
                lambda jsg=jsg: WsKernel(jsg, "python3"),
                [jsg, kg2],
            )
        )
    if "eg" in include and eg_venv is not None:
        eg = start_enterprise_gateway(workdir / "eg", eg_venv)  # EG sets no iopub cap
        targets.append(
            Target("Enterprise Gateway 3.3 (own venv)", lambda eg=eg: WsKernel(eg, "python3"), [eg])
        )
    if "accel-gateway" in include:
        gw = start_gateway(workdir / "gw")
        targets.append(
            Target("accel gateway (direct)", lambda gw=gw: WsKernel(gw, "python3"), [gw])
        )
    if "accel" in include:
        gw2 = start_gateway(workdir / "gw2")
        server = start_accel_server(workdir / "accel", {"bench": gw2})
        targets.append(
            Target(
                "jupyterlab-accel full path",
                lambda s=server: WsKernel(s, "accel--bench--python3"),
                [server, gw2],
            )
        )
    return targets


def start_accel_server(workdir: Path, gateways: dict[str, Proc], *args: str) -> Proc:
    """jupyter_server with jupyterlab_accel routing to the given gateways (tokens via env)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env, runtimes = {}, []
    for name, gw in gateways.items():
        var = f"ACCEL_BENCH_TOKEN_{name.upper().replace('-', '_')}"
        env[var] = gw.token
        runtimes.append({"name": name, "display_name": name, "url": gw.url, "token_env": var})
    cfg = workdir / "jupyter_server_config.json"
    cfg.write_text(
        json.dumps(
            {
                "RuntimeRegistry": {"runtimes": runtimes},
                "EmbeddedGateway": {"enabled": False},
                "AccelState": {"state_dir": str(workdir / "state")},
            }
        )
    )
    return start_server(workdir, f"--config={cfg}", *args, env=env)


def log_tails(t: Target, lines: int = 12) -> None:
    """The end of each process log of a target that just failed (warnings and errors first)."""
    for p in t.procs:
        text = p.logtext().splitlines()
        bad = [ln for ln in text if any(w in ln for w in ("[W ", "[E ", "Traceback", "Error"))]
        print(f"  --- {p.log.name} (last problems) ---", file=sys.stderr)
        for ln in (bad or text)[-lines:]:
            print("   " + ln[:300], file=sys.stderr)


def measure_round(t: Target, cells: int, big: bool) -> None:
    if big:
        t.samples["big_runs"] += 1  # a round that fails earlier is a failed delivery too
    t0 = time.perf_counter()
    try:
        k = t.open_kernel()
    except Exception as e:  # a start that never answers is a failure of the path, not of the run
        t.samples["start_failed"] = t.samples.get("start_failed", 0) + 1
        print(
            f"  {t.name}: kernel start/first execute failed: {type(e).__name__}: {e}"[:500],
            file=sys.stderr,
        )
        log_tails(t)
        return
    t.samples["start"].append(time.perf_counter() - t0)
    try:
        try:
            for _ in range(cells):
                t0 = time.perf_counter()
                k.execute("1+1")
                t.samples["rtt"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            got = k.execute(STREAM_CELL)["stdout"]
            dt = time.perf_counter() - t0
            t.samples["stream"].append(got / dt / 1e6 if got >= STREAM_BYTES else 0.0)
        except Exception as e:  # counted as a zero-throughput round
            t.samples["stream"].append(0.0)
            print(
                f"  {t.name}: round trip/stream failed: {type(e).__name__}: {e}"[:500],
                file=sys.stderr,
            )
            log_tails(t)
            return
        if big:
            try:
                got = k.execute(BIG_CELL, timeout=90)["stdout"]
                t.samples["big_ok"] += int(got >= BIG_BYTES)
            except Exception as e:  # a dropped connection or a timeout is a failed delivery
                print(
                    f"  {t.name}: 50 MB message not delivered: {type(e).__name__}: {e}",
                    file=sys.stderr,
                )
    finally:
        try:
            k.close()
        except Exception:
            pass


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def _med(xs):
    return statistics.median(xs) if xs else float("nan")


def report(targets: list[Target]) -> dict:
    base = targets[0].samples
    base_rtt, base_tp = _med(base["rtt"]), _med(base["stream"])
    kg = next((t.samples for t in targets if t.name == "stock Kernel Gateway"), None)
    base_start = _med(kg["start"]) if kg else float("nan")
    rows = []
    for t in targets:
        s = t.samples
        rtt, tp, start = _med(s["rtt"]), _med(s["stream"]), _med(s["start"])
        rows.append(
            {
                "target": t.name,
                "starts_ok": f"{len(s['start'])}/{len(s['start']) + s.get('start_failed', 0)}",
                "start_s": start,
                "start_ratio_kg": start / base_start,
                "rtt_ms": rtt * 1e3,
                "rtt_p99_ms": pct(s["rtt"], 0.99) * 1e3 if s["rtt"] else float("nan"),
                "rtt_ratio": rtt / base_rtt,
                "stream_MBps": tp,
                "stream_ratio": tp / base_tp if base_tp else float("nan"),
                "big_delivered": f"{s['big_ok']}/{s['big_runs']}",
            }
        )
    print(
        "\n| path | kernels up | start (s) | start / stock KG | RTT median (ms) | RTT p99 (ms) | RTT ratio | "
        "stream MB/s | stream ratio | 50 MB message |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['target']} | {r['starts_ok']} | {r['start_s']:.2f} | {r['start_ratio_kg']:.2f}x | "
            f"{r['rtt_ms']:.1f} | {r['rtt_p99_ms']:.1f} | {r['rtt_ratio']:.2f}x | {r['stream_MBps']:.0f} | "
            f"{r['stream_ratio']:.2f}x | {r['big_delivered']} |"
        )
    return {"rows": rows}


def parse_size(text: str) -> int:
    units = {"K": 10**3, "M": 10**6, "G": 10**9}
    text = text.strip().upper().rstrip("B")
    return int(float(text[:-1]) * units[text[-1]]) if text[-1:] in units else int(text)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cells", type=int, default=30, help="1+1 round trips per kernel per round")
    ap.add_argument("--targets", default="kg,server,gateway-url,eg,accel-gateway,accel")
    ap.add_argument("--phases", default="transport,change,fanout,upload")
    ap.add_argument("--upload-size", default="2G", help="bytes of the uploaded file (2G, 64M, ...)")
    ap.add_argument("--upload-rounds", type=int, default=1)
    ap.add_argument("--fanout-seconds", type=float, default=6.0)
    ap.add_argument(
        "--eg-venv",
        default=str(Path.home() / ".cache" / "jupyterlab-accel-bench" / "eg-venv"),
        help="venv for Enterprise Gateway (created and pip-installed when missing)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="CI-sized: 2 rounds, 10 cells, 64 MB upload, 3 s fan-out; no EG install",
    )
    ap.add_argument("--json", help="write the raw samples and tables here")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.cells, args.upload_size = min(args.rounds, 2), min(args.cells, 10), "64M"
        args.fanout_seconds = min(args.fanout_seconds, 3.0)
    include = set(args.targets.split(","))
    wanted = set(args.phases.split(","))
    result: dict = {"machine": {"cpus": os.cpu_count()}, "args": vars(args)}
    eg_venv = None
    if "eg" in include:
        venv = Path(args.eg_venv).expanduser()
        if args.quick and not (venv / "bin" / "jupyter-enterprisegateway").exists():
            why = "skipped in --quick mode (its venv is not installed)"
        else:
            why = ensure_venv(venv)
        eg_venv = None if why else venv
        result["enterprise_gateway"] = why or "ran from its own venv"
        if why:
            print(f"Enterprise Gateway: {why}", file=sys.stderr)
    # A SIGTERM (e.g. from `timeout`) still stops every server this run started.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="accel-bench-") as tmp:
        if "transport" in wanted:
            targets = build_targets(Path(tmp) / "t", include, eg_venv)
            try:
                for r in range(args.rounds):
                    for t in targets:
                        measure_round(t, args.cells, big=True)
                    print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
                result.update(report(targets))
            finally:
                for t in targets:
                    t.close()
            result["samples"] = {t.name: t.samples for t in targets}
        if wanted & {"change", "fanout", "upload"}:
            result.update(phases.run(Path(tmp) / "p", wanted, args, start_accel_server))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return result


if __name__ == "__main__":
    main()
