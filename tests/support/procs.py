"""Real processes on 127.0.0.1 for tests and benchmarks: gateways, servers. Stopped by PID."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(
    url: str, headers: dict | None = None, timeout: float = 30, proc=None, verify=True
) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            r = requests.get(url, headers=headers, timeout=2, verify=verify)
            if r.status_code < 500:
                return
            last = r.status_code
        except requests.RequestException as e:
            last = e
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM by PID, then SIGKILL; the whole process group when it has its own."""
    if proc.poll() is not None:
        return
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    own_group = pgid == proc.pid
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        try:
            if own_group:
                os.killpg(pgid, sig)
            else:
                proc.send_signal(sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class Proc:
    url: str
    token: str
    proc: subprocess.Popen
    root: Path
    log: Path
    port: int
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def headers(self) -> dict:
        return {"Authorization": f"token {self.token}"}

    def api(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 30)
        return requests.request(method, self.url + path, headers=self.headers, **kw)

    def stop(self) -> None:
        stop(self.proc)

    def logtext(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _env(token: str, extra_env: dict | None) -> dict:
    env = dict(os.environ)
    # The token travels in the environment, never on a command line.
    env["JUPYTER_TOKEN"] = token
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra_env or {})
    return env


def launch(
    what: str,
    cmd: list[str],
    env: dict,
    workdir: Path,
    log: Path,
    url: str,
    token: str,
    root: Path,
    port: int,
    ready_path: str,
    timeout: float,
    verify: bool = True,
) -> Proc:
    """Start cmd in its own process group, logging to log; return once ready_path answers."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True
        )
    p = Proc(url, token, proc, root, log, port)
    try:
        wait_http(url + ready_path, p.headers, timeout, proc, verify=verify)
    except Exception:
        stop(proc)
        raise RuntimeError(f"{what} did not start:\n{p.logtext()[-3000:]}")
    return p


def start_gateway(
    workdir: Path,
    *args: str,
    token: str | None = None,
    env: dict | None = None,
    port: int | None = None,
    timeout: float = 60,
) -> Proc:
    """Our gateway (`python -m accel_gateway`) with its workspace under workdir."""
    token = token or secrets.token_hex(16)
    port = port or free_port()
    workspace = workdir / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    log = workdir / f"gateway-{port}.log"
    cmd = [
        sys.executable,
        "-m",
        "accel_gateway",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--workspace={workspace}",
        f"--ServerApp.runtime_dir={workdir / 'runtime'}",
        *args,
    ]
    tls = any(a.startswith("--certfile") for a in args)  # https with the given certificate
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    return launch(
        "gateway",
        cmd,
        _env(token, env),
        workdir,
        log,
        url,
        token,
        workspace,
        port,
        "/api/kernelspecs",
        timeout,
        verify=not tls,
    )


def start_stock_gateway(
    workdir: Path, *args: str, token: str | None = None, timeout: float = 60
) -> Proc:
    """The stock jupyter-kernel-gateway, for side-by-side and compatibility tests."""
    token = token or secrets.token_hex(16)
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"stock-kg-{port}.log"
    cmd = [
        sys.executable,
        "-m",
        "kernel_gateway",
        "--KernelGatewayApp.ip=127.0.0.1",
        f"--KernelGatewayApp.port={port}",
        "--KernelGatewayApp.allow_origin=*",
        *args,
    ]
    return launch(
        "stock gateway",
        cmd,
        _env(token, {"KG_AUTH_TOKEN": token}),
        workdir,
        log,
        f"http://127.0.0.1:{port}",
        token,
        workdir,
        port,
        "/api/kernelspecs",
        timeout,
    )


def start_server(
    workdir: Path,
    *args: str,
    token: str | None = None,
    env: dict | None = None,
    app: str = "jupyter_server",
    timeout: float = 60,
    port: int | None = None,
) -> Proc:
    """A real jupyter_server (or `app`='jupyterlab') process on loopback, rooted at workdir/root."""
    token = token or secrets.token_hex(16)
    port = port or free_port()
    root = workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    log = workdir / f"server-{port}.log"
    # Its own data folder, so a server never reads or locks the user's jupyterlab_accel state
    # (the default state folder) unless its config names one.
    env = {"JUPYTER_DATA_DIR": str(workdir / "jupyter-data"), **(env or {})}
    cmd = [
        sys.executable,
        "-m",
        app,
        "--ip=127.0.0.1",
        f"--port={port}",
        "--no-browser",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_root=True",
        *args,
    ]
    return launch(
        "server",
        cmd,
        _env(token, env),
        workdir,
        log,
        f"http://127.0.0.1:{port}",
        token,
        root,
        port,
        "/api/status",
        timeout,
    )
