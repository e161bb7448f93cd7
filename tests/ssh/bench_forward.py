"""SSH runtime figures: Connect -> first cell result (first time with install, later), and RTT /
stream through the SSH forward against the direct path. Needs root (test user + sshd).

    python -m tests.ssh.bench_forward [--later 3] [--cells 30] [--rounds 3] [--no-install]

Targets, all through jupyter_server + jupyterlab_accel (JupyterLab's path, v1 protocol):
- direct: our gateway on 127.0.0.1 TCP as a URL runtime;
- ssh: the same gateway code on the SSH host (this machine as the test user), reached through
  the provider's local port -> SSH channel -> the gateway's Unix socket.
And the gateway alone: its TCP port vs the SSH provider's forwarded port (no relay)."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from tests.server.conftest import server_with, start_session
from tests.ssh.conftest import fresh_install, start_sshd, stop_sshd
from tests.support.kernel_ws import KernelClient
from tests.support.procs import start_gateway

STREAM_CELL = (
    "import sys\nfor _ in range(50):\n    sys.stdout.write('x' * 1_000_000); sys.stdout.flush()"
)


def connect_to_first_cell(lab, name: str) -> dict:
    t0 = time.monotonic()
    r = lab.api(
        "POST",
        "/accel/providers/ssh?wait=300",
        json={"name": name, "host": "known-box"},
        timeout=320,
    )
    prov = r.json()["provider"]
    assert prov["state"] == "ready", prov
    t_ready = time.monotonic() - t0
    specs = lab.api("GET", "/api/kernelspecs").json()["kernelspecs"]
    kname = next(n for n in specs if n.startswith(f"accel--{name}--"))
    sess = start_session(lab, kname, f"{name}.ipynb")
    with KernelClient(lab.url, sess["kernel"]["id"], lab.token, protocol="v1") as kc:
        assert kc.eval("1+1") == "2"
    return {
        "total_s": time.monotonic() - t0,
        "ready_s": t_ready,
        "steps": prov["details"].get("timings"),
    }


def remote_id(lab_dir: Path, kid: str) -> str:
    """The runtime's own id of a kernel this server routes (its kernel map in the state)."""
    rec = json.loads((lab_dir / "state" / "kernels.json").read_text())[kid]
    return rec.get("remote_id") or kid


def rtt_and_stream(base_url: str, kid: str, token: str, cells: int) -> dict:
    with KernelClient(base_url, kid, token, protocol="v1", timeout=120) as kc:
        kc.execute("1+1")
        rtts = []
        for _ in range(cells):
            t = time.perf_counter()
            kc.execute("1+1")
            rtts.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        res = kc.execute(STREAM_CELL, timeout=120)
        took = time.perf_counter() - t
        assert len(res["stdout"]) == 50_000_000
    rtts.sort()
    return {
        "rtt_median_ms": statistics.median(rtts),
        "rtt_p99_ms": rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))],
        "stream_mb_s": 50 / took,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--later", type=int, default=3, help="connects after the first")
    ap.add_argument("--cells", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-install", action="store_true", help="keep the host's venv")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ssh-"))
    host = start_sshd(tmp / "sshd")
    gw = lab = None
    out: dict = {"connect": [], "rtt": {}}
    try:
        gw = start_gateway(tmp / "gw")
        known_hosts = tmp / "known_hosts"
        known_hosts.write_text((host.dir / "known_hosts_lines").read_text())
        lab = server_with(
            tmp / "lab",
            [{"name": "direct", "url": gw.url, "token": gw.token}],
            extra={
                "SSHProvider": {
                    "ssh_config": [str(host.ssh_config)],
                    "known_hosts": str(known_hosts),
                }
            },
        )
        if not args.no_install:
            fresh_install(host)
        for i in range(1 + args.later):
            name = f"ssh{i}"
            res = connect_to_first_cell(lab, name)
            res["kind"] = "later" if i or args.no_install else "first (with install)"
            out["connect"].append(res)
            print(
                f"connect -> first cell, {res['kind']}: {res['total_s']:.1f} s {res['steps']}",
                flush=True,
            )
            if i < args.later:
                assert lab.api("DELETE", f"/accel/providers/ssh/{name}").status_code == 204
        name = f"ssh{args.later}"
        # the SSH runtime's forwarded port and token, for the no-relay comparison
        lab_dir = tmp / "lab"
        rts = json.loads((lab_dir / "state" / "runtimes.json").read_text())
        rec = next(r["provider"] for r in rts if r.get("provider", {}).get("name") == name)
        fwd_url = f"http://127.0.0.1:{rec['local_port']}"
        kernels = {}
        for target in ("direct", name):
            specs = lab.api("GET", "/api/kernelspecs").json()["kernelspecs"]
            kname = next(n for n in specs if n.startswith(f"accel--{target}--"))
            kernels[target] = start_session(lab, kname, f"rtt-{target}.ipynb")["kernel"]["id"]
        paths = {
            "server -> gateway (TCP, direct)": (lab.url, kernels["direct"], lab.token),
            "server -> SSH forward -> gateway": (lab.url, kernels[name], lab.token),
            "gateway alone, TCP": (gw.url, remote_id(lab_dir, kernels["direct"]), gw.token),
            "gateway alone, via SSH forward": (
                fwd_url,
                remote_id(lab_dir, kernels[name]),
                rec["token"],
            ),
        }
        samples: dict = {k: [] for k in paths}
        for _ in range(args.rounds):
            for label, (url, kid, token) in paths.items():
                samples[label].append(rtt_and_stream(url, kid, token, args.cells))
        for label, runs in samples.items():
            row = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            out["rtt"][label] = row
            print(
                f"| {label} | {row['rtt_median_ms']:.1f} | {row['rtt_p99_ms']:.1f} | "
                f"{row['stream_mb_s']:.0f} |"
            )
        lab.api("DELETE", f"/accel/providers/ssh/{name}")
    finally:
        if lab is not None:
            lab.stop()
        if gw is not None:
            gw.stop()
        stop_sshd(host)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
