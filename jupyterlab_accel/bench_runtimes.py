"""`jupyter accel bench-runtimes`: the same small CNN training on every healthy runtime.

Connects to a running jupyter_server with jupyterlab_accel (URL and token from the flags or
JUPYTER_SERVER_URL / JUPYTER_TOKEN; the token is never printed), lists the healthy runtimes
(GET /accel/runtimes), starts a kernel on each through the server's standard kernel API, sends
it jupyterlab_accel/bench_cnn.py, trains, and prints: runtime, accelerator, backend/device,
time, speedup against the CPU runtime, cost per run (where price_per_hour is configured).
`--direct` also runs the same script on this host without a kernel; for a runtime on this host
the "vs direct" column is then the remote-kernel overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from .names import remote_name

# The training script, sent as source to each kernel and never imported here: it needs numpy
# (and torch, where present), which are the runtimes' business, not this command's.
CNN_SCRIPT = Path(__file__).with_name("bench_cnn.py")
COMMANDS = {
    "bench-runtimes": "train the same small CNN on every healthy runtime and compare them",
}
USAGE = "usage: jupyter accel COMMAND [--help]\n\ncommands:\n" + "".join(
    f"  {name:16} {text}\n" for name, text in COMMANDS.items()
)


class Server:
    """REST + kernel websockets of one jupyter_server, token in a header."""

    def __init__(self, url: str, token: str, timeout: float):
        self.url, self.timeout = url.rstrip("/"), timeout
        self.headers = {"Authorization": f"token {token}"} if token else {}
        self.http = AsyncHTTPClient()

    async def api(self, method: str, path: str, body=None, timeout=None):
        req = HTTPRequest(
            self.url + path,
            method,
            headers={**self.headers, "Content-Type": "application/json"},
            body=None if body is None else json.dumps(body),
            request_timeout=timeout or self.timeout,
        )
        resp = await self.http.fetch(req)
        return json.loads(resp.body) if resp.body else None

    async def run_cells(self, kernel_id: str, cells: list[str], timeout: float) -> list[dict]:
        """Execute cells in order on one websocket; per cell {stdout, error, wall}."""
        session = uuid.uuid4().hex
        url = (
            self.url.replace("http", "ws", 1) + f"/api/kernels/{quote(kernel_id)}/channels"
            f"?session_id={session}"
        )
        conn = await websocket_connect(
            HTTPRequest(url, headers=self.headers, request_timeout=timeout),
            max_message_size=1 << 30,
        )
        out = []
        try:
            for code in cells:
                out.append(await self._execute(conn, session, code, timeout))
        finally:
            conn.close()
        return out

    @staticmethod
    async def _execute(conn, session: str, code: str, timeout: float) -> dict:
        msg_id = uuid.uuid4().hex
        conn.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": "bench",
                        "session": session,
                        "date": "",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "buffers": [],
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                }
            )
        )
        t0 = time.perf_counter()
        stdout, error, reply, idle = [], None, None, False
        deadline = time.monotonic() + timeout
        while not (idle and reply is not None):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply within {timeout:.0f}s")
            raw = await asyncio.wait_for(conn.read_message(), left)
            if raw is None:
                raise ConnectionError("kernel websocket closed")
            m = json.loads(raw)
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = m["header"]["msg_type"]
            if kind == "execute_reply":
                reply = m["content"]
            elif kind == "status" and m["content"]["execution_state"] == "idle":
                idle = True
            elif kind == "stream" and m["content"]["name"] == "stdout":
                stdout.append(m["content"]["text"])
            elif kind == "error":
                error = f"{m['content']['ename']}: {m['content']['evalue']}"
        if reply.get("status") != "ok" and error is None:
            error = reply.get("status")
        return {"stdout": "".join(stdout), "error": error, "wall": time.perf_counter() - t0}


def _spec_for(specs: dict, runtime: str) -> str | None:
    """The runtime's python3 kernel name (accel--{runtime}--python3), else its first one."""
    names = [
        n
        for n, s in specs["kernelspecs"].items()
        if ((s.get("spec") or {}).get("metadata") or {}).get("accel", {}).get("runtime") == runtime
    ]
    preferred = remote_name(runtime, "python3")
    return preferred if preferred in names else (sorted(names)[0] if names else None)


def _results(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def bench_runtime(server: Server, rt: dict, kernel_name: str, args) -> dict:
    row = {
        "runtime": rt["name"],
        "accelerator": rt.get("accelerator") or "?",
        "price_per_hour": rt.get("price_per_hour"),
    }
    kernel = await server.api("POST", "/api/kernels", {"name": kernel_name}, timeout=args.timeout)
    try:
        setup = (
            f"__accel_bench = {{'__name__': 'accel_bench_cnn'}}\n"
            f"exec(compile({CNN_SCRIPT.read_text()!r}, 'bench_cnn.py', 'exec'), __accel_bench)\n"
            f"__accel_state = __accel_bench['setup']({args.samples}, backend={args.backend!r})"
        )
        train = (
            f"import json as _j\nprint(_j.dumps(__accel_bench['train'](__accel_state, "
            f"{args.epochs}, {args.batch})))"
        )
        cells = await server.run_cells(kernel["id"], [setup] + [train] * args.repeat, args.timeout)
    finally:
        try:
            await server.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=30)
        except Exception:  # noqa: BLE001 - best effort
            pass
    failed = next((c["error"] for c in cells if c["error"]), None)
    if failed:
        return {**row, "error": failed}
    runs = [_results(c["stdout"])[-1] for c in cells[1:]]
    row.update(
        backend=runs[0]["backend"],
        device=runs[0]["device"],
        seconds=statistics.median(r["seconds"] for r in runs),  # inside the kernel
        wall=statistics.median(c["wall"] for c in cells[1:]),  # request -> reply
        first_loss=runs[0]["first_loss"],
        last_loss=runs[-1]["last_loss"],
    )
    return row


def run_direct(args) -> dict:
    """The same script as a plain process on this host (no kernel, no server)."""
    cmd = [
        sys.executable,
        "-m",  # as a module: the package's folder never shadows the standard library
        "jupyterlab_accel.bench_cnn",
        "--samples",
        str(args.samples),
        "--epochs",
        str(args.epochs),
        "--batch",
        str(args.batch),
        "--repeat",
        str(args.repeat),
        "--backend",
        args.backend,
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    if p.returncode != 0:
        return {"runtime": "(this host, no kernel)", "error": p.stderr.strip().splitlines()[-1:]}
    runs = _results(p.stdout)
    secs = statistics.median(r["seconds"] for r in runs)
    return {
        "runtime": "(this host, no kernel)",
        "accelerator": "-",
        "backend": runs[0]["backend"],
        "device": runs[0]["device"],
        "seconds": secs,
        "wall": secs,
        "price_per_hour": None,
        "first_loss": runs[0]["first_loss"],
        "last_loss": runs[-1]["last_loss"],
    }


def _is_cpu(row: dict) -> bool:
    return "error" not in row and str(row.get("accelerator", "")).upper().startswith("CPU")


def print_table(rows: list[dict], direct: dict | None, out=sys.stdout) -> None:
    cpu = next((r for r in rows if _is_cpu(r)), None)
    cols = [
        "runtime",
        "accelerator",
        "backend / device",
        "train time (s)",
        "wall via kernel (s)",
        "speedup vs CPU",
        "cost per run",
    ] + (["vs direct"] if direct else [])
    print("| " + " | ".join(cols) + " |", file=out)
    print("|" + "---|" * len(cols), file=out)
    for r in rows + ([direct] if direct else []):
        if "error" in r:
            print(
                f"| {r['runtime']} | {r.get('accelerator', '?')} | failed: {r['error']} |", file=out
            )
            continue
        speed = f"{cpu['wall'] / r['wall']:.2f}x" if cpu else "-"
        price = r.get("price_per_hour")
        cost = f"{price * r['wall'] / 3600:.6f}" if price else "-"
        cells = [
            r["runtime"],
            r["accelerator"],
            f"{r['backend']} / {r['device']}",
            f"{r['seconds']:.3f}",
            f"{r['wall']:.3f}",
            speed,
            cost,
        ]
        if direct:
            ok = "seconds" in direct and "wall" in r
            cells.append(f"{(r['wall'] / direct['seconds'] - 1) * 100:+.1f}%" if ok else "–")
        print("| " + " | ".join(cells) + " |", file=out)


async def amain(args) -> int:
    server = Server(args.url, args.token, args.timeout)
    try:
        runtimes = await server.api("GET", "/accel/runtimes")
        specs = await server.api("GET", "/api/kernelspecs")
    except HTTPClientError as e:
        print(
            f"error: {args.url} answered {e.code} (is jupyterlab_accel enabled, is the token right?)",
            file=sys.stderr,
        )
        return 2
    except OSError as e:
        print(f"error: cannot reach {args.url}: {e.strerror or e}", file=sys.stderr)
        return 2
    wanted = set(args.runtimes.split(",")) if args.runtimes else None
    rows = []
    for rt in runtimes:
        if wanted is not None and rt["name"] not in wanted:
            continue
        if not rt.get("healthy"):
            print(f"skipping {rt['name']}: not healthy ({rt.get('error')})", file=sys.stderr)
            continue
        name = _spec_for(specs, rt["name"])
        if name is None:
            print(f"skipping {rt['name']}: no kernelspec", file=sys.stderr)
            continue
        print(f"training on {rt['name']} ...", file=sys.stderr, flush=True)
        try:
            rows.append(await bench_runtime(server, rt, name, args))
        except Exception as e:  # noqa: BLE001 - one runtime failing does not stop the others
            rows.append(
                {
                    "runtime": rt["name"],
                    "accelerator": rt.get("accelerator") or "?",
                    "error": f"{type(e).__name__}: {e}",
                }
            )
    direct = run_direct(args) if args.direct else None
    print_table(rows, direct)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "runtimes": rows,
                    "direct": direct,
                    "args": {k: v for k, v in vars(args).items() if k != "token"},
                },
                indent=1,
            )
        )
    return 0 if rows and all("error" not in r for r in rows) else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="jupyter accel bench-runtimes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--url",
        default=os.environ.get("JUPYTER_SERVER_URL", "http://127.0.0.1:8888"),
        help="jupyter_server base URL (env JUPYTER_SERVER_URL)",
    )
    ap.add_argument("--token", default=None, help="server token (better: env JUPYTER_TOKEN)")
    ap.add_argument("--runtimes", help="comma-separated runtime names (default: all healthy)")
    ap.add_argument("--samples", type=int, default=16384, help="synthetic 28x28 images")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3, help="timed trainings per runtime (median)")
    ap.add_argument("--backend", choices=("auto", "torch", "numpy"), default="auto")
    ap.add_argument(
        "--direct", action="store_true", help="also run the script on this host, no kernel"
    )
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per kernel start / cell")
    ap.add_argument("--json", help="write rows here")
    args = ap.parse_args(argv)
    args.token = args.token or os.environ.get("JUPYTER_TOKEN", "")
    return asyncio.run(amain(args))


def cli(argv=None) -> int:
    """`jupyter-accel SUBCOMMAND` (so `jupyter accel bench-runtimes` works)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    if not argv or argv[0] not in COMMANDS:
        if argv:
            print(f"jupyter accel: unknown command {argv[0]!r}", file=sys.stderr)
        print(USAGE, end="", file=sys.stderr)
        return 2
    return main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
