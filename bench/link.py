"""Over an emulated network link: jupyterlab-accel's full path against the stock stack.

    python -m bench.link [--profiles lan,region,far] [--rounds 3] [--upload-size 1G] [--json F]
    python -m bench.link --quick      # CI-sized: far only, 1 round, small outputs and upload

The link (bench/linkemu.py, one process per hop) sits where the network is: between the local
jupyter_server and the runtime, or between the client and a runtime it talks to directly.
Targets, side by side, every round visiting each in turn:
- **jupyterlab-accel full path**: client -> jupyter_server + jupyterlab_accel -> link -> our
  gateway (two runtimes a and b, each behind its own link, for Change runtime type);
  `+ compression` is the same with permessage-deflate on the server <-> runtime websocket
  and gzip on its REST answers (`websocket_compression` and `http_compression` on).
- **stock --gateway-url**: client -> stock jupyter_server --gateway-url -> link -> stock KG.
- **stock KG direct**: client -> link -> stock Kernel Gateway.
- Files (upload, listing) have no remote side on the two stock gateway paths (contents stay on
  the local server; Kernel Gateway has no contents API), so their stock row is a **stock
  jupyter_server across the link** (client -> link -> jupyter_server), a remote Jupyter.

Each operation is reported in seconds, in link round trips (time / RTT) and, for bulk ones, as
a fraction of the link's bandwidth; `exchanges` are the request/response turns the link counted
during the operation and `conns` the TCP connections it opened (each costs one RTT more).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.change_runtime import write_second_kernelspec
from bench.linkemu import PROFILES, LinkProcess
from bench.transport import WsKernel, parse_size, start_accel_server
from bench.upload import chunked_upload
from tests.support.kernel_ws import KernelClient
from tests.support.procs import Proc, _env, free_port, launch, start_gateway, start_server

NOCAP = "--ZMQChannelsWebsocketConnection.iopub_data_rate_limit=0"
# Training-log-like lines: what a long cell prints (compresses about as well as real logs).
TEXT_SETUP = """
def _line(i):
    return (f"{i:09d} epoch={i // 5000} step={i} loss={(i * 7919 % 10007) / 10007:.6f} "
            f"lr=3.0e-04 grad_norm={(i * 104729 % 99991) / 9999.1:.4f} tokens/s={i * 31 % 99991}\\n")
_text, _n, _i = [], 0, 0
while _n < SIZE:
    _c = ''.join(_line(j) for j in range(_i, _i + 4000))[: SIZE - _n]
    _text.append(_c); _n += len(_c); _i += 4000
"""
TEXT_CELL = "import sys\nfor _c in _text:\n    sys.stdout.write(_c); sys.stdout.flush()"
# The shape of DataFrame.to_html(): a table of floats with a header row and an index column.
HTML_SETUP = """
_cols = 12
_head = ('<table border="1" class="dataframe">\\n  <thead>\\n    <tr style="text-align: right;">'
         '\\n      <th></th>\\n' + ''.join(f'      <th>col_{c}</th>\\n' for c in range(_cols))
         + '    </tr>\\n  </thead>\\n  <tbody>\\n')
def _row(r):
    return ('    <tr>\\n      <th>' + str(r) + '</th>\\n'
            + ''.join(f'      <td>{(r * 7919 + c * 104729) % 1000003 / 1000.0:.6f}</td>\\n'
                      for c in range(_cols)) + '    </tr>\\n')
_rows, _n, _r = [], len(_head), 0
while _n < SIZE - 30:
    _x = _row(_r); _rows.append(_x); _n += len(_x); _r += 1
_html = _head + ''.join(_rows) + '  </tbody>\\n</table>'
from IPython.display import HTML as _HTML
"""
HTML_CELL = "display(_HTML(_html))"


@dataclasses.dataclass
class Hop:
    """A link and the real process behind it."""

    link: LinkProcess
    proc: Proc

    @property
    def far(self) -> Proc:
        """The process as seen from across the link."""
        return dataclasses.replace(self.proc, url=self.link.url)


class Meter:
    """Counts what crossed some links during one operation."""

    def __init__(self, links: list[LinkProcess]):
        self.links = links

    def __enter__(self):
        for link in self.links:
            link.reset()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *a):
        self.seconds = time.perf_counter() - self.t0
        stats = [link.stats() for link in self.links]
        self.exchanges = sum(s["exchanges"] for s in stats)
        self.conns = sum(s["connections"] for s in stats)
        # One time line over every link, each request tagged with the link's name.
        tagged = [
            (float(r.split(" ", 1)[0]), f"{r} [{getattr(link, 'name', '?')}]")
            for link, s in zip(self.links, stats)
            for r in s["requests"]
        ]
        self.requests = [r for _, r in sorted(tagged)]


class Target:
    def __init__(self, name: str, client: Proc, kernel_a: str, kernel_b: str, links: list):
        self.name, self.client, self.kernel_a, self.kernel_b = name, client, kernel_a, kernel_b
        self.links = links  # the links this target's operations cross
        self.files: tuple[Proc, str] | None = None  # (client side, contents API prefix)
        self.samples: dict = {}

    def add(self, profile: str, op: str, m: Meter | None, **values) -> None:
        row = {}
        if m is not None:
            row = {"seconds": m.seconds, "exchanges": m.exchanges, "conns": m.conns}
            row["requests"] = m.requests
        row.update(values)
        self.samples.setdefault(profile, {}).setdefault(op, []).append(row)


NOTEBOOK_FOLDER = "nb"  # what file sync moves on Change runtime type: a script and a small CSV


def notebook_folder(root: Path) -> None:
    folder = root / NOTEBOOK_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prep.py").write_text(
        "".join(f"def step_{i}(x):\n    return x + {i}\n" for i in range(60))
    )
    (folder / "data.csv").write_text("".join(f"{i},{i * 0.5},label-{i % 7}\n" for i in range(5000)))


def _session(server: Proc, kernel: str) -> dict:
    r = server.api(
        "POST",
        "/api/sessions",
        json={
            "path": f"{NOTEBOOK_FOLDER}/link-{uuid.uuid4().hex[:8]}.ipynb",
            "type": "notebook",
            "name": "",
            "kernel": {"name": kernel},
        },
        timeout=120,
    )
    r.raise_for_status()
    return r.json()


def measure(t: Target, profile: str, args, errors: list) -> None:
    """One round of every operation on target t, on the link profile now set."""

    def fail(op, e):
        errors.append(f"{profile} {t.name} {op}: {type(e).__name__}: {e}"[:400])
        print("  " + errors[-1], file=sys.stderr, flush=True)

    if t.kernel_a:
        kernel_ops(t, profile, args, fail)
        try:
            change_runtime(t, profile)
        except Exception as e:
            fail("change", e)
    if t.files is not None:
        file_ops(t, profile, args, fail)


def bulk_floor(k, args) -> dict:
    """The text and HTML cells on our gateway without the link: the kernel's and one hop's
    own time, which no link can remove."""
    k.execute(
        TEXT_SETUP.replace("SIZE", str(args.text_bytes))
        + HTML_SETUP.replace("SIZE", str(args.html_bytes)),
        timeout=120,
    )
    floor = {}
    for op, cell in (("text", TEXT_CELL), ("html", HTML_CELL)):
        t0 = time.perf_counter()
        if op == "text":
            k.execute(cell, timeout=120)
        else:
            k.kc.execute(cell, timeout=120)
        floor[op] = time.perf_counter() - t0
    return floor


def bulk_timeout(profile: str, size: int) -> float:
    """Long enough for `size` bytes at a third of the link's rate; a lost output fails fast."""
    return 30 + 3 * size / PROFILES[profile].rate


def kernel_ops(t: Target, profile: str, args, fail) -> None:
    k = None
    try:
        with Meter(t.links) as m:
            k = WsKernel(t.client, t.kernel_a)  # POST /api/kernels, websocket, `1` answered
        t.add(profile, "start", m)
        k.execute(
            TEXT_SETUP.replace("SIZE", str(args.text_bytes))
            + HTML_SETUP.replace("SIZE", str(args.html_bytes))
        )
        for _ in range(args.cells):
            with Meter(t.links) as m:
                k.execute("1+1")
            t.add(profile, "cell", m)
        with Meter(t.links) as m:
            got = k.execute(TEXT_CELL, timeout=bulk_timeout(profile, args.text_bytes))["stdout"]
        t.add(profile, "text", m, bytes=got, ok=got == args.text_bytes)
        with Meter(t.links) as m:
            r = k.kc.execute(HTML_CELL, timeout=bulk_timeout(profile, args.html_bytes))
        html = sum(len(o.get("data", {}).get("text/html", "")) for o in r["outputs"])
        t.add(profile, "html", m, bytes=html, ok=html == args.html_expected)
    except Exception as e:
        fail("kernel", e)
    finally:
        if k is not None:
            try:
                k.close()
            except Exception:
                pass


def file_ops(t: Target, profile: str, args, fail) -> None:
    proc, prefix = t.files
    try:
        with Meter(t.links) as m:
            r = proc.api("GET", f"{prefix}/many", timeout=120)
            r.raise_for_status()
        n = len(r.json()["content"])
        t.add(profile, "listing", m, bytes=len(r.content), ok=n == args.files)
    except Exception as e:
        fail("listing", e)
    if args.upload_bytes:
        try:
            with Meter(t.links) as m:
                chunked_upload(proc, f"{prefix}/link-upload.bin", args.upload_bytes, 60)
            t.add(profile, "upload", m, bytes=args.upload_bytes, ok=True)
        except Exception as e:
            fail("upload", e)


def change_runtime(t: Target, profile: str) -> None:
    """PATCH the session to kernel_b, then `1+1` over a fresh websocket (as JupyterLab does).
    Kernel Gateway has no session store: there the client starts kernel_b and deletes kernel_a."""
    c = t.client
    if t.name.startswith("stock KG direct"):
        old = WsKernel(c, t.kernel_a)
        try:
            with Meter(t.links) as m:
                new = WsKernel(c, t.kernel_b)
                c.api("DELETE", f"/api/kernels/{old.id}", timeout=60)
        finally:
            old.kc.close()
        new.close()
        t.add(profile, "change", m)
        return
    sess = _session(c, t.kernel_a)
    try:
        with KernelClient(c.url, sess["kernel"]["id"], c.token, timeout=120, protocol="auto") as kc:
            kc.execute("1")
        with Meter(t.links) as m:
            r = c.api(
                "PATCH",
                f"/api/sessions/{sess['id']}",
                json={"kernel": {"name": t.kernel_b}},
                timeout=120,
            )
            r.raise_for_status()
            new = r.json()["kernel"]["id"]
            with KernelClient(c.url, new, c.token, timeout=120, protocol="auto") as kc:
                value = kc.eval("1+1")
        t.add(profile, "change", m, ok=value == "2" and new != sess["kernel"]["id"])
    finally:
        c.api("DELETE", f"/api/sessions/{sess['id']}", timeout=60)


def start_stock_kg(workdir: Path, data_dir: Path) -> Proc:
    """Stock Kernel Gateway with a second kernelspec (python3-b) in data_dir."""
    import secrets

    token, port = secrets.token_hex(16), free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "kernel_gateway",
        "--KernelGatewayApp.ip=127.0.0.1",
        f"--KernelGatewayApp.port={port}",
        "--KernelGatewayApp.allow_origin=*",
        NOCAP,
    ]
    env = _env(token, {"KG_AUTH_TOKEN": token, "JUPYTER_PATH": str(data_dir)})
    url = f"http://127.0.0.1:{port}"
    log = workdir / f"stock-kg-{port}.log"
    return launch(
        "stock gateway", cmd, env, workdir, log, url, token, workdir, port, "/api/kernelspecs", 60
    )


def many_files(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"file-{i:05d}.txt").write_bytes(b"")


def deflate_config(workdir: Path, level: int = 1) -> str:
    """A gateway `--config` accepting permessage-deflate at zlib `level` (the option is a dict,
    which the command line cannot give)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "deflate_config.json"
    opts = {"compression_level": level, "mem_level": 8}
    cfg.write_text(json.dumps({"ServerApp": {"websocket_compression_options": opts}}))
    return f"--config={cfg}"


class Rig:
    """Every process and link of the run, started once; profiles are switched on the links."""

    def __init__(self, tmp: Path, args):
        self.procs: list[Proc] = []
        self.links: list[LinkProcess] = []
        self.targets: list[Target] = []
        try:
            self._start(tmp, args)
        except BaseException:
            self.close()
            raise

    def _start(self, tmp: Path, args) -> None:
        first = PROFILES[args.profiles[0]]
        data = tmp / "data"
        write_second_kernelspec(data)
        # Our gateways accept permessage-deflate, so the relay's setting decides.
        a = self.hop(start_gateway(tmp / "gw-a", deflate_config(tmp / "gw-a")), first, "a")
        b = self.hop(start_gateway(tmp / "gw-b", deflate_config(tmp / "gw-b")), first, "b")
        many_files(a.proc.root / "many", args.files)
        variants = [("", ())]  # no compression setting in this tree: one plain variant
        if args.compression_setting:
            variants = [
                (
                    " + compression" if mode == "on" else "",
                    (
                        f"--RuntimeRegistry.websocket_compression={mode}",
                        f"--RuntimeRegistry.http_compression={mode}",
                    ),
                )
                for mode in ("off", "on")
                if mode in args.compression
            ]
        for suffix, opts in variants:
            srv = self.keep(
                start_accel_server(tmp / f"accel{len(self.procs)}", {"a": a.far, "b": b.far}, *opts)
            )
            notebook_folder(srv.root)
            t = Target(
                "jupyterlab-accel full path" + suffix,
                srv,
                "accel--a--python3",
                "accel--b--python3",
                [a.link, b.link],
            )
            t.files = (srv, "/accel/runtimes/a/contents")
            self.targets.append(t)
        kg = self.hop(start_stock_kg(tmp / "kg", data), first, "kg")
        jsg = self.keep(
            start_server(
                tmp / "jsg",
                f"--gateway-url={kg.link.url}",
                NOCAP,
                env={"JUPYTER_NO_CONFIG": "1", "JUPYTER_GATEWAY_AUTH_TOKEN": kg.proc.token},
            )
        )
        notebook_folder(jsg.root)  # the same session path (nothing follows it there)
        self.targets.append(Target("stock --gateway-url", jsg, "python3", "python3-b", [kg.link]))
        self.targets.append(Target("stock KG direct", kg.far, "python3", "python3-b", [kg.link]))
        js = self.hop(start_server(tmp / "js", NOCAP, env={"JUPYTER_NO_CONFIG": "1"}), first, "js")
        many_files(js.proc.root / "many", args.files)
        files = Target("stock jupyter_server across the link", js.far, "", "", [js.link])
        files.files = (js.far, "/api/contents")
        self.files_only = files
        self.boot = a.proc  # our gateway without the link: the kernel's own boot time
        self.boot_samples: list[float] = []
        self.cell_floor: list[float] = []  # `1+1` on our gateway without the link
        self.bulk_floor: list[dict] = []  # the text and HTML cells there, seconds

    def keep(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        return proc

    def hop(self, proc: Proc, profile, name: str) -> Hop:
        self.keep(proc)
        link = LinkProcess(proc.port, profile=profile)
        link.name = name
        self.links.append(link)
        return Hop(link, proc)

    def set_profile(self, name: str) -> None:
        for link in self.links:
            link.set_profile(name)

    def close(self) -> None:
        for p in reversed(self.procs):  # processes first: they matter most
            try:
                p.stop()
            except Exception as e:  # noqa: BLE001 - go on stopping the others
                print(f"  stopping {p.pid}: {e}", file=sys.stderr)
        for link in self.links:
            try:
                link.close()
            except Exception as e:  # noqa: BLE001
                print(f"  closing link {link.port}: {e}", file=sys.stderr)


def median(rows: list[dict], key: str) -> float:
    xs = [r[key] for r in rows if key in r]
    return statistics.median(xs) if xs else float("nan")


OPS = [
    ("cell", "cell `1+1`"),
    ("start", "kernel start -> first result"),
    ("change", "Change runtime type -> first result"),
    ("text", "text output"),
    ("html", "DataFrame-HTML output"),
    ("upload", "upload (JupyterLab chunks)"),
    ("listing", "Files listing"),
]
BULK = {"text", "html", "upload", "listing"}


def report(rig: Rig, args) -> list[dict]:
    rows = []
    boot = statistics.median(rig.boot_samples) if rig.boot_samples else float("nan")
    floor = statistics.median(rig.cell_floor) if rig.cell_floor else float("nan")
    bulk = {
        op: statistics.median(f[op] for f in rig.bulk_floor) if rig.bulk_floor else float("nan")
        for op in ("text", "html")
    }
    for profile in args.profiles:
        p = PROFILES[profile]
        print(
            f"\n### `{profile}`: RTT {p.rtt * 1e3:g} ms, {p.rate * 8 / 1e6:g} Mbit/s "
            f"(without the link, through our gateway: kernel boot {boot:.2f} s, cell `1+1` "
            f"{floor * 1e3:.1f} ms, text output {bulk['text']:.2f} s, DataFrame HTML "
            f"{bulk['html']:.2f} s)\n"
        )
        print(
            "| operation | path | seconds | link RTTs | excess RTTs | fraction of link | "
            "exchanges | conns | ok |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for op, label in OPS:
            for t in [*rig.targets, rig.files_only]:
                samples = t.samples.get(profile, {}).get(op)
                if not samples:
                    continue
                sec = median(samples, "seconds")
                rtts = sec / p.rtt
                excess = "-"
                if op in ("start", "change"):
                    excess = f"{(sec - boot) / p.rtt:.1f}"
                elif op == "cell":
                    excess = f"{(sec - p.rtt) * 1e3:.1f} ms"
                frac = "-"
                size = median(samples, "bytes")
                if op in BULK and sec > 0:
                    frac = f"{size / sec / p.rate:.2f}"
                ok = sum(1 for s in samples if s.get("ok", True))
                row = {
                    "profile": profile,
                    "op": op,
                    "path": t.name,
                    "seconds": sec,
                    "rtts": rtts,
                    "fraction": None if frac == "-" else float(frac),
                    "bytes": size,
                    "exchanges": median(samples, "exchanges"),
                    "conns": median(samples, "conns"),
                    "ok": f"{ok}/{len(samples)}",
                }
                rows.append(row)
                what = (
                    f"{label} ({size / 1e6:.0f} MB)" if op in ("text", "html", "upload") else label
                )
                print(
                    f"| {what} | {t.name} | {sec:.3f} | {rtts:.1f} | {excess} | {frac} | "
                    f"{row['exchanges']:.0f} | {row['conns']:.0f} | {row['ok']} |"
                )
    last = args.profiles[-1]
    print(f"\nRequests across the link, `{last}`, first round (ms since the operation began):")
    for op in ("start", "change"):
        for t in rig.targets:
            samples = t.samples.get(last, {}).get(op)
            if samples:
                print(f"- {op}, {t.name}: " + "; ".join(samples[0].get("requests", [])))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--profiles", default="lan,region,far")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cells", type=int, default=10, help="`1+1` round trips per round")
    ap.add_argument("--text-size", default="50M", help="bytes of text output")
    ap.add_argument("--html-size", default="20M", help="bytes of DataFrame-shaped HTML output")
    ap.add_argument("--upload-size", default="1G", help="bytes uploaded; 0 = skip")
    ap.add_argument("--files", type=int, default=5000, help="entries of the listed folder")
    ap.add_argument(
        "--compression",
        default="off,on",
        help="full path variants: off, on or both (permessage-deflate and gzip, server <-> runtime)",
    )
    ap.add_argument("--quick", action="store_true", help="CI-sized: far, 1 round, small sizes")
    ap.add_argument("--json", help="write samples and rows here")
    args = ap.parse_args(argv)
    if args.quick:
        args.profiles, args.rounds, args.cells = "far", 1, 3
        args.text_size, args.html_size, args.upload_size, args.files = "2M", "1M", "4M", 200
    args.profiles = args.profiles.split(",")
    for p in args.profiles:
        if p not in PROFILES:
            ap.error(f"unknown profile {p!r}: one of {', '.join(PROFILES)}")
    args.compression = set(args.compression.split(","))
    args.compression_setting = has_compression_setting()
    if not args.compression_setting:
        args.compression = {"off"}
    args.text_bytes = parse_size(args.text_size)
    args.html_bytes = parse_size(args.html_size)
    args.upload_bytes = parse_size(args.upload_size)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="accel-link-") as tmp:
        rig = Rig(Path(tmp), args)
        args.html_expected = html_length(rig.boot, args.html_bytes)
        try:
            for r in range(args.rounds):
                t0 = time.perf_counter()
                k = WsKernel(rig.boot, "python3")
                rig.boot_samples.append(time.perf_counter() - t0)
                for _ in range(args.cells):  # the cell's floor: kernel and gateway, no link
                    t0 = time.perf_counter()
                    k.execute("1+1")
                    rig.cell_floor.append(time.perf_counter() - t0)
                rig.bulk_floor.append(bulk_floor(k, args))
                k.close()
                for profile in args.profiles:
                    rig.set_profile(profile)
                    for t in rig.targets:
                        measure(t, profile, args, errors)
                    measure(rig.files_only, profile, args, errors)
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
            rows = report(rig, args)
        finally:
            rig.close()
    result = {
        "machine": {"cpus": os.cpu_count()},
        "args": {k: sorted(v) if isinstance(v, set) else v for k, v in vars(args).items()},
        "rows": rows,
        "without_link": {"boot": rig.boot_samples, "cell": rig.cell_floor, "bulk": rig.bulk_floor},
        "errors": errors,
        "samples": {t.name: t.samples for t in [*rig.targets, rig.files_only]},
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return result


def html_length(gw: Proc, size: int) -> int:
    """The exact length of the HTML the kernel will display (asked of a kernel once)."""
    k = WsKernel(gw, "python3")
    try:
        r = k.kc.execute(HTML_SETUP.replace("SIZE", str(size)) + "len(_html)", timeout=120)
        return int(r["outputs"][0]["data"]["text/plain"])
    finally:
        k.close()


def has_compression_setting() -> bool:
    """Whether the server extension has the `websocket_compression` setting."""
    try:
        from jupyterlab_accel.runtimes import RuntimeRegistry
    except ImportError:
        return False
    return "websocket_compression" in RuntimeRegistry.class_trait_names()


if __name__ == "__main__":
    main()
