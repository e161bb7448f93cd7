"""The embedded default runtime: our gateway as a child process on loopback.

The token is generated here and handed over in the environment (JUPYTER_TOKEN), never argv.
The child is stopped by PID at server shutdown (and asked to die with us via PDEATHSIG)."""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time

from traitlets import Bool, Float, List, Unicode
from traitlets.config import LoggingConfigurable

from .runtime import Runtime
from .state import AccelState


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class EmbeddedGateway(LoggingConfigurable):
    """Starts `python -m accel_gateway` on 127.0.0.1 so a fresh install has one runtime."""

    enabled = Bool(
        True,
        config=True,
        help="Start the embedded runtime (a gateway on this machine, on loopback).",
    )
    name = Unicode("local", config=True, help="Runtime name of the embedded gateway.")
    display_name = Unicode(
        "This machine", config=True, help="Display name of the embedded runtime."
    )
    extra_args = List(
        Unicode(),
        config=True,
        help="Extra command-line arguments for the embedded gateway "
        "(never put secrets here: command lines are visible to every user).",
    )
    stop_timeout = Float(
        10, config=True, help="Seconds to wait after SIGTERM before SIGKILL at shutdown."
    )

    def __init__(self, **kw):
        super().__init__(**kw)
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self, root_dir: str) -> Runtime:
        """Spawn the gateway (answers within a couple of seconds) and return its runtime."""
        token = secrets.token_hex(24)
        port = _free_port()
        state = AccelState(parent=self)
        log_path = state.path("embedded-gateway.log")
        env = dict(os.environ)
        env["JUPYTER_TOKEN"] = token
        cmd = [
            sys.executable,
            "-m",
            "accel_gateway",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--workspace={root_dir}",
            *self.extra_args,
        ]
        fd = os.open(log_path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as out:
            self.proc = subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=root_dir,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.started_at = time.monotonic()
        self.log.info(
            "jupyterlab_accel: embedded runtime %r starting (pid %s, port %s, log %s)",
            self.name,
            self.proc.pid,
            port,
            log_path,
        )
        return Runtime(
            self.name,
            f"http://127.0.0.1:{port}",
            display_name=self.display_name,
            token=token,
            embedded=True,
        )

    @property
    def starting(self) -> bool:
        """True while the child is alive and young: callers may wait for it to answer."""
        return (
            self.proc is not None
            and self.proc.poll() is None
            and time.monotonic() - self.started_at < 30
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        self.log.info("jupyterlab_accel: stopping embedded runtime (pid %s)", proc.pid)
        for sig, wait in ((signal.SIGTERM, self.stop_timeout), (signal.SIGKILL, 5)):
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue
