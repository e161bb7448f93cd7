"""The embedded default runtime: our gateway as a supervised child process of the server.

No port to race for: the gateway listens on a Unix domain socket in a 0700 folder of this user,
and every connection to it is checked to come from the child we started (SO_PEERCRED) before
a request, and so the token, is written. The token is generated here and handed over in the
environment (JUPYTER_TOKEN), never argv; that environment is built from an allow-list, so the
server's own secrets (other runtimes' `token_env` variables, its JUPYTER_TOKEN) never reach
kernels. A child that dies is restarted (back-off if it keeps dying) and the runtime carries a
notice saying so. The child is stopped by PID at server shutdown (and dies with us, PDEATHSIG)."""

from __future__ import annotations

import ctypes
import fnmatch
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from tornado.ioloop import PeriodicCallback
from traitlets import Bool, Float, List, Unicode
from traitlets.config import LoggingConfigurable

from .runtime import Runtime
from .state import AccelState

# Room for a Unix socket path (sun_path is 108 bytes on Linux, with its NUL).
_MAX_SOCKET_PATH = 100
SOCKET_NAME = "embedded-gateway.sock"
# Environment variables the gateway (and so its kernels) may inherit from the server.
DEFAULT_PASS_ENV = [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TERM",
    "TMPDIR",
    "XDG_*",
    "PYTHONPATH",
    "PYTHONUNBUFFERED",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "CONDA_*",
    "JUPYTER_CONFIG_DIR",
    "JUPYTER_CONFIG_PATH",
    "JUPYTER_DATA_DIR",
    "JUPYTER_PATH",
    "JUPYTER_PLATFORM_DIRS",
    "IPYTHONDIR",
    "MPLCONFIGDIR",
    "LD_LIBRARY_PATH",
    "CUDA_*",
    "NVIDIA_*",
    "TPU_*",
    "XLA_*",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "NO_PROXY",
    "no_proxy",
]
# Never passed, whatever `pass_env` says (jupyter_server's and JupyterHub's credentials).
NEVER_PASS = ("JUPYTER_TOKEN", "JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def allowed_environment(
    environ: dict, patterns: list[str], exclude: set[str] | frozenset = frozenset()
) -> dict:
    """The variables of `environ` matching one of `patterns`, less `exclude` and NEVER_PASS."""
    blocked = set(exclude) | set(NEVER_PASS)
    return {
        k: v
        for k, v in environ.items()
        if k not in blocked and any(fnmatch.fnmatchcase(k, p) for p in patterns)
    }


class EmbeddedGateway(LoggingConfigurable):
    """Starts and supervises `python -m accel_gateway` on a private Unix socket, so a fresh
    install has one runtime ("This machine")."""

    enabled = Bool(
        True,
        config=True,
        help="Start the embedded runtime (a gateway on this machine, on a private Unix socket).",
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
    pass_env = List(
        Unicode(),
        default_value=DEFAULT_PASS_ENV,
        config=True,
        help="Shell-style patterns of the server's environment variables the embedded gateway "
        "and its kernels inherit; everything else (the server's secrets) is left out. "
        "JUPYTER_TOKEN and JupyterHub tokens are never passed.",
    )
    stop_timeout = Float(
        10, config=True, help="Seconds to wait after SIGTERM before SIGKILL at shutdown."
    )
    restart_delay = Float(
        0.5,
        config=True,
        help="Seconds before restarting a gateway that died; doubled each time it dies again "
        "within `stable_after` seconds, up to `max_restart_delay`.",
    )
    max_restart_delay = Float(60, config=True, help="Longest wait between restarts.")
    stable_after = Float(
        60, config=True, help="Seconds up after which a gateway counts as stable again."
    )

    def __init__(self, **kw):
        super().__init__(**kw)
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.runtime: Runtime | None = None
        self.restarts = 0
        self.exclude_env: set[str] = set()
        self._root_dir = ""
        self._socket_dir: str | None = None  # a private temp folder when the state path is long
        self._failures = 0
        self._restart_at: float | None = None
        self._watch: PeriodicCallback | None = None

    # -- start ----------------------------------------------------------------------------
    def start(self, root_dir: str, exclude_env: set[str] | None = None) -> Runtime:
        """Spawn the gateway (answers within a couple of seconds) and return its runtime;
        from then on it is watched and restarted if it dies."""
        self._root_dir = root_dir
        self.exclude_env = set(exclude_env or ())
        self.runtime = Runtime(
            self.name,
            "http://localhost",  # host unused: requests go to the Unix socket
            display_name=self.display_name,
            embedded=True,
        )
        self._spawn()
        self._watch = PeriodicCallback(self._check_child, 250)
        self._watch.start()
        return self.runtime

    def _socket_path(self) -> str:
        state = AccelState(parent=self)
        path = str(state.path(SOCKET_NAME))
        if len(path.encode()) <= _MAX_SOCKET_PATH:
            return path
        if self._socket_dir is None:  # mkdtemp: mode 0700, a fresh name no one can pre-create
            self._socket_dir = tempfile.mkdtemp(prefix="jupyterlab-accel-")
        return os.path.join(self._socket_dir, SOCKET_NAME)

    def _spawn(self) -> None:
        rt = self.runtime
        assert rt is not None  # start() made it
        token = secrets.token_hex(24)
        sock = self._socket_path()
        try:
            os.unlink(sock)  # a socket left by a gateway that died
        except FileNotFoundError:
            pass
        state = AccelState(parent=self)
        log_path = state.path("embedded-gateway.log")
        env = allowed_environment(dict(os.environ), self.pass_env, self.exclude_env)
        env["JUPYTER_TOKEN"] = token
        cmd = [
            sys.executable,
            "-m",
            "accel_gateway",
            f"--sock={sock}",
            "--ServerApp.sock_mode=0600",
            f"--workspace={self._root_dir}",
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
                cwd=self._root_dir,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.started_at = time.monotonic()
        child = self.proc.pid
        rt.set_token(token)
        rt.set_unix_socket(sock, peer_pid=child)
        rt.healthy, rt.error, rt.checked_at = False, "starting", 0.0
        self.log.info(
            "jupyterlab_accel: embedded runtime %r starting (pid %s, log %s)",
            self.name,
            child,
            log_path,
        )

    # -- supervision -----------------------------------------------------------------------
    def _check_child(self) -> None:
        proc, rt = self.proc, self.runtime
        if proc is None or rt is None:
            return
        now = time.monotonic()
        if self._restart_at is not None:
            if now >= self._restart_at:
                self._restart_at = None
                self.restarts += 1
                self._spawn()
            return
        code = proc.poll()
        if code is None:
            if now - self.started_at > self.stable_after:
                self._failures = 0
            return
        self._failures += 1
        delay = min(self.restart_delay * 2 ** (self._failures - 1), self.max_restart_delay)
        self._restart_at = now + delay
        self.started_at = self._restart_at  # when the next child starts (callers wait on it)
        when = time.strftime("%H:%M:%S")
        rt.notice = (
            f"The runtime on this machine stopped unexpectedly (exit code {code}) at {when} and "
            "is being restarted; kernels that ran on it were lost."
        )
        rt.mark_unhealthy(f"stopped (exit code {code}); restarting in {delay:g} s")
        self.log.warning(
            "jupyterlab_accel: embedded runtime (pid %s) exited with %s; restart in %g s",
            proc.pid,
            code,
            delay,
        )

    @property
    def starting(self) -> bool:
        """True while the child is alive and young, or about to be restarted soon: callers
        (a session start on "This machine") may wait for it to answer."""
        now = time.monotonic()
        if self._restart_at is not None:
            return self._restart_at - now < 5
        return self.proc is not None and self.proc.poll() is None and now - self.started_at < 30

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            self.log.info("jupyterlab_accel: stopping embedded runtime (pid %s)", proc.pid)
            for sig, wait in ((signal.SIGTERM, self.stop_timeout), (signal.SIGKILL, 5)):
                try:
                    os.kill(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
