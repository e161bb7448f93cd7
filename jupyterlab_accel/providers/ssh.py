"""SSH provider: any machine this server's user can ssh to becomes a runtime.

Steps (each reported as the status `step`): connecting (asyncssh, ~/.ssh/config honoured, host
key checked against known_hosts), checking (Python >= 3.9, gateway version), installing (a wheel
built here, sent over SFTP into a venv under ~/.cache/jupyterlab-accel), starting (the gateway
detached on a 0600 Unix socket, token over stdin). This server then listens on 127.0.0.1:PORT and
carries every connection to that socket through the SSH connection, so the runtime URL stays the
same across link drops; on a drop the provider reconnects with back-off and re-attaches.

No shell strings from user input: every remote command is `shlex.join`ed from a fixed argv, and
parameters go over stdin as JSON."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shlex
import socket
import sys
import tempfile
from pathlib import Path

import asyncssh
from traitlets import Float, List, Unicode

from . import ssh_remote as remote
from .base import Endpoint, ProviderError, RuntimeProvider, State

STEP_CONNECTING, STEP_CHECKING, STEP_INSTALLING, STEP_STARTING = (
    "connecting",
    "checking",
    "installing",
    "starting",
)


def local_gateway_version() -> str:
    from accel_gateway._version import __version__

    return __version__


def _older(remote_version: str | None, local_version: str) -> bool:
    if not remote_version:
        return True
    try:
        from packaging.version import Version

        return Version(remote_version) < Version(local_version)
    except Exception:  # unparsable: reinstall
        return remote_version != local_version


def known_hosts_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def ssh_config_hosts(config_files: list[str]) -> list[str]:
    """Host aliases (no wildcards) of OpenSSH config files, for the Connect dialog."""
    files = config_files or ["~/.ssh/config"]
    hosts: list[str] = []
    for name in files:
        try:
            lines = Path(name).expanduser().read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.strip().split()
            if len(words) > 1 and words[0].lower() == "host":
                hosts += [w for w in words[1:] if not set(w) & set("*?!") and w not in hosts]
    return hosts


class _HostKeyProbe(asyncssh.SSHClient):
    """Sees the key of a host that known_hosts does not trust; trusts it only if the user
    accepted exactly that fingerprint (and known_hosts had no other key for the host)."""

    def __init__(self, provider: SSHProvider):
        self.provider = provider

    def validate_host_public_key(self, host, addr, port, key) -> bool:
        fingerprint = key.get_fingerprint("sha256")
        self.provider._seen_key = (host, addr, port, key)
        known = self.provider._known_keys(host, addr, port)
        return not known and fingerprint == self.provider.accepted_fingerprint


class SSHProvider(RuntimeProvider):
    """A gateway on an SSH host, installed and started on demand, reached through the link."""

    kind = "ssh"

    ssh_config = List(
        Unicode(),
        config=True,
        help="OpenSSH client config files to read (Host aliases with HostName, User, Port, "
        "IdentityFile, ProxyJump). Empty: ~/.ssh/config of the server's user.",
    )
    known_hosts = Unicode(
        "~/.ssh/known_hosts",
        config=True,
        help="known_hosts file host keys are checked against; keys the user accepts are added.",
    )
    connect_timeout = Float(
        8, config=True, help="Seconds to reach and authenticate to the host before failing."
    )
    keepalive_interval = Float(
        5,
        config=True,
        help="Seconds between SSH keepalives; three unanswered ones mark the link lost.",
    )
    install_timeout = Float(
        600, config=True, help="Seconds the venv + pip install on the host may take."
    )
    reconnect_max_delay = Float(
        10, config=True, help="Longest wait between reconnect attempts after a link drop."
    )
    gateway_wheel = Unicode(
        "",
        config=True,
        help="Wheel of jupyterlab-accel-gateway to install on hosts. Empty: build one with "
        "`pip wheel --no-deps` from the kernel_gateway/ source next to accel_gateway.",
    )

    def __init__(
        self,
        name: str,
        host: str,
        *,
        python: str | None = None,
        instance: str | None = None,
        token: str | None = None,
        local_port: int = 0,
        **kw,
    ):
        super().__init__(name, **kw)
        if not isinstance(host, str) or not host.strip() or host.startswith("-"):
            raise ProviderError("host must be a host name or an alias from ~/.ssh/config")
        if any(c.isspace() for c in host):
            raise ProviderError("host must not contain spaces")
        if python is not None and (not isinstance(python, str) or not python.strip()):
            raise ProviderError("python must be a path or command name on the host")
        self.host = host.strip()
        self.python = (python or "").strip() or "python3"
        self.instance = instance or f"{name}-{secrets.token_hex(4)}"
        self._token = token
        self.local_port = int(local_port or 0)
        self.accepted_fingerprint: str | None = None
        self._passphrase: str | None = None  # in memory only, for reconnects; never written
        # (host, addr, port, key) of the last host key known_hosts did not trust
        self._seen_key: tuple[str, str, int, asyncssh.SSHKey] | None = None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._connected = asyncio.Event()
        self._server: asyncio.base_events.Server | None = None
        self._monitor: asyncio.Task | None = None
        self._start_task: asyncio.Task | None = None
        self._stopping = False
        self._remote_sock: str | None = None
        self.set_status(State.STOPPED, "not connected")

    # -- records --------------------------------------------------------------------------
    def persisted(self) -> dict:
        return {
            **super().persisted(),
            "host": self.host,
            "python": None if self.python == "python3" else self.python,
            "instance": self.instance,
            "token": self._token,
            "local_port": self.local_port,
        }

    def public_model(self) -> dict:
        return {**super().public_model(), "host": self.host, "python": self.python}

    # -- host keys ------------------------------------------------------------------------
    @property
    def known_hosts_path(self) -> Path:
        return Path(self.known_hosts).expanduser()

    def _known_hosts(self):
        try:
            text = self.known_hosts_path.read_text()
        except OSError:
            text = ""
        return asyncssh.import_known_hosts(text)

    def _known_keys(self, host, addr, port) -> list:
        return list(asyncssh.match_known_hosts(self._known_hosts(), host, addr, port)[0])

    def _remember_accepted_key(self) -> None:
        if self._seen_key is None:
            return
        host, _addr, port, key = self._seen_key
        if key.get_fingerprint("sha256") != self.accepted_fingerprint:
            return
        line = f"{known_hosts_pattern(host, port)} {key.export_public_key('openssh').decode()}"
        path = self.known_hosts_path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(line.strip() + "\n")
        self.log.info("jupyterlab_accel: host key of %s added to %s", host, path)
        self.accepted_fingerprint = None

    def accept_host_key(self, fingerprint: str) -> None:
        """The user accepts the key shown; only that exact fingerprint will be trusted."""
        shown = self.status.details.get("fingerprint")
        if self.status.reason != "host_key_unknown" or fingerprint != shown:
            raise ProviderError(
                "no unknown host key with that fingerprint is waiting to be accepted",
                reason="host_key_mismatch",
            )
        self.accepted_fingerprint = fingerprint

    # -- connection -------------------------------------------------------------------------
    async def _connect(self) -> asyncssh.SSHClientConnection:
        self._seen_key = None
        options = {
            "known_hosts": self._known_hosts(),
            "client_factory": lambda: _HostKeyProbe(self),
            "connect_timeout": self.connect_timeout,
            "login_timeout": self.connect_timeout,
            "keepalive_interval": self.keepalive_interval,
            "keepalive_count_max": 3,
        }
        if self.ssh_config:
            options["config"] = [str(Path(p).expanduser()) for p in self.ssh_config]
        if self._passphrase:
            options["passphrase"] = self._passphrase
        try:
            conn = await asyncio.wait_for(
                asyncssh.connect(self.host, **options), self.connect_timeout + 1
            )
        except asyncssh.HostKeyNotVerifiable as e:
            raise self._host_key_error(e) from None
        except asyncssh.PermissionDenied as e:
            raise ProviderError(
                f"authentication refused by {self.host}: {e.reason or e}. Check the key (agent "
                "or IdentityFile); if the key has a passphrase, enter it.",
                step=STEP_CONNECTING,
                reason="auth_refused",
            ) from None
        except (asyncssh.KeyEncryptionError, asyncssh.KeyImportError) as e:
            raise ProviderError(
                f"could not load the SSH key: {e}",
                step=STEP_CONNECTING,
                reason="bad_key",
            ) from None
        except (OSError, asyncio.TimeoutError, asyncssh.Error) as e:
            text = str(e) or type(e).__name__
            if isinstance(e, asyncio.TimeoutError):
                text = f"no answer within {self.connect_timeout:g} s"
            raise ProviderError(
                f"host {self.host} unreachable: {text}",
                step=STEP_CONNECTING,
                reason="host_unreachable",
            ) from None
        self._remember_accepted_key()
        return conn

    def _host_key_error(self, exc) -> ProviderError:
        if self._seen_key is None:
            return ProviderError(
                f"host key of {self.host} not verifiable: {exc}",
                step=STEP_CONNECTING,
                reason="host_key_unknown",
            )
        host, addr, port, key = self._seen_key
        fingerprint = key.get_fingerprint("sha256")
        details = {"fingerprint": fingerprint, "key_type": key.get_algorithm(), "host": host}
        if self._known_keys(host, addr, port):
            err = ProviderError(
                f"WARNING: the host key of {host} has CHANGED (now {fingerprint}). Someone may "
                f"be intercepting the connection, or the host was reinstalled. Refused; if the "
                f"change is expected, remove the old key from {self.known_hosts_path}.",
                step=STEP_CONNECTING,
                reason="host_key_changed",
            )
        else:
            err = ProviderError(
                f"the authenticity of host {host} can't be established: "
                f"{key.get_algorithm()} key fingerprint is {fingerprint}. Accept it to connect.",
                step=STEP_CONNECTING,
                reason="host_key_unknown",
            )
        err.details = details
        return err

    async def _run(self, argv: list[str], stdin: str = "", timeout: float = 30):
        """Run argv on the host (each argument quoted), stdin given; returns the result."""
        assert self._conn is not None
        return await self._conn.run(shlex.join(argv), input=stdin, check=False, timeout=timeout)

    async def _run_json(self, argv, cfg: dict, step: str, reason: str, timeout: float = 30):
        payload = json.dumps({"base": remote.BASE, "instance": self.instance, **cfg}) + "\n"
        try:
            res = await self._run(argv, payload, timeout)
        except asyncssh.TimeoutError:
            raise ProviderError(
                f"{step}: no answer within {timeout:g} s", step=step, reason=reason
            ) from None
        except (OSError, asyncssh.Error) as e:
            raise ProviderError(f"{step}: SSH link failed: {e}", step=step, reason=reason) from None
        return res

    # -- steps --------------------------------------------------------------------------
    async def _check(self) -> dict:
        res = await self._run_json(
            [self.python, "-c", remote.CHECK],
            {"venv_python": remote.VENV_PYTHON},
            STEP_CHECKING,
            "no_python",
        )
        if res.exit_status in (126, 127):
            raise ProviderError(
                f"no Python on {self.host}: {self.python!r} not found "
                f"({(res.stderr or '').strip()[:200]}). Install Python >= 3.9 or give its path.",
                step=STEP_CHECKING,
                reason="no_python",
            )
        try:
            info = json.loads((res.stdout or "").strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise ProviderError(
                f"{self.python} on {self.host} could not run the host check "
                f"(exit {res.exit_status}): {(res.stderr or '').strip()[-300:]}",
                step=STEP_CHECKING,
                reason="no_python",
            ) from None
        if not info.get("ok"):
            raise ProviderError(
                f"Python {info.get('python')} on {self.host} is older than 3.9",
                step=STEP_CHECKING,
                reason="no_python",
            )
        return info

    async def _build_wheel(self) -> Path:
        if self.gateway_wheel:
            wheel = Path(self.gateway_wheel).expanduser()
            if not wheel.is_file():
                raise ProviderError(
                    f"SSHProvider.gateway_wheel {wheel} does not exist",
                    step=STEP_INSTALLING,
                    reason="install_failed",
                )
            return wheel
        import accel_gateway

        source = Path(accel_gateway.__file__).resolve().parent.parent
        if not (source / "pyproject.toml").is_file():
            raise ProviderError(
                "no gateway wheel to install: set SSHProvider.gateway_wheel",
                step=STEP_INSTALLING,
                reason="install_failed",
            )
        out = Path(tempfile.mkdtemp(prefix="accel-gateway-wheel-"))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(out),
            str(source),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await proc.communicate()
        wheels = sorted(out.glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise ProviderError(
                f"building the gateway wheel failed: {output.decode(errors='replace')[-300:]}",
                step=STEP_INSTALLING,
                reason="install_failed",
            )
        self.gateway_wheel = str(wheels[0])
        return wheels[0]

    async def _install(self) -> None:
        step, reason = STEP_INSTALLING, "install_failed"
        wheel = await self._build_wheel()
        remote_dir = f"{remote.BASE}/wheels"
        remote_wheel = f"{remote_dir}/{wheel.name}"
        assert self._conn is not None
        try:
            async with self._conn.start_sftp_client() as sftp:
                await sftp.makedirs(remote_dir, exist_ok=True)
                await sftp.put(str(wheel), remote_wheel)
        except (OSError, asyncssh.Error) as e:
            raise ProviderError(
                f"sending the gateway wheel over SFTP failed: {e}", step=step, reason=reason
            ) from None
        res = await self._run(
            [self.python, "-m", "venv", "--system-site-packages", remote.VENV], timeout=120
        )
        if res.exit_status != 0:
            raise ProviderError(
                f"`{self.python} -m venv` failed on {self.host} (is python3-venv installed?): "
                f"{(res.stderr or res.stdout or '').strip()[-300:]}",
                step=step,
                reason=reason,
            )
        res = await self._run(
            [remote.VENV_PYTHON, "-m", "pip", "install", "-q", "--upgrade", remote_wheel],
            timeout=self.install_timeout,
        )
        if res.exit_status != 0:
            err = (res.stderr or res.stdout or "").strip()
            missing = [
                line.split("for", 1)[-1].strip()
                for line in err.splitlines()
                if "No matching distribution found for" in line
            ]
            why = (
                f"dependencies not available from the host's pip index: {', '.join(missing)}"
                if missing
                else err[-400:]
            )
            raise ProviderError(
                f"installing the gateway on {self.host} failed: {why}", step=step, reason=reason
            )

    async def _start_gateway(self) -> str:
        self._token = secrets.token_hex(24)
        res = await self._run_json(
            [remote.VENV_PYTHON, "-c", remote.START],
            {"token": self._token},
            STEP_STARTING,
            "start_failed",
            timeout=90,
        )
        try:
            rec = json.loads((res.stdout or "").strip().splitlines()[-1])
        except (ValueError, IndexError):
            rec = {"error": (res.stderr or res.stdout or "no output").strip()[-400:]}
        if "error" in rec:
            raise ProviderError(
                f"starting the gateway on {self.host} failed: {rec['error']}",
                step=STEP_STARTING,
                reason="start_failed",
            )
        return rec["sock"]

    # -- local listener: 127.0.0.1:PORT -> the gateway's socket, through the link ----------
    async def _listen(self) -> None:
        if self._server is not None:
            return
        for port in (self.local_port, 0) if self.local_port else (0,):
            try:
                self._server = await asyncio.start_server(self._carry, "127.0.0.1", port)
                break
            except OSError:
                continue
        assert self._server is not None, "no local port to listen on"
        sock = self._server.sockets[0]
        self.local_port = sock.getsockname()[1]
        self.endpoint = Endpoint(f"http://127.0.0.1:{self.local_port}", token=self._token)

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            # A request arriving during a reconnect waits a little for the link.
            await asyncio.wait_for(self._connected.wait(), self.connect_timeout)
            if self._conn is None:
                raise OSError("the link is down")
            up_reader, up_writer = await self._conn.open_unix_connection(self._remote_sock)
        except (asyncio.TimeoutError, OSError, asyncssh.Error, AttributeError):
            writer.close()
            return

        async def pipe(src, dst):
            try:
                while data := await src.read(1 << 16):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncssh.Error, ConnectionError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    if dst.can_write_eof():
                        dst.write_eof()
                    else:
                        dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        with contextlib.suppress(Exception):
            writer.close()
            up_writer.close()

    # -- life cycle -----------------------------------------------------------------------
    def start_soon(self, passphrase: str | None = None) -> asyncio.Task:
        """Start (or re-attach) in the background; progress is in `status`."""
        if passphrase:
            self._passphrase = passphrase
        if self._start_task is None or self._start_task.done():
            # STARTING at once, so a caller waiting for ready-or-stopped sees this attempt.
            self.set_status(
                State.STARTING, f"connecting to {self.host}", step=STEP_CONNECTING, details={}
            )
            self._start_task = asyncio.ensure_future(self._start_reporting())
        return self._start_task

    async def _start_reporting(self) -> None:
        try:
            await self.start()
        except ProviderError:
            pass  # already in status
        except Exception as e:  # a bug must still reach the user, not hang "starting"
            self.log.exception("jupyterlab_accel: SSH runtime %r failed", self.name)
            self.set_status(State.STOPPED, f"failed: {e}", reason="internal_error")

    async def start(self) -> Endpoint:
        self._stopping = False
        try:
            return await self._bring_up(first=True)
        except ProviderError as e:
            self._fail(e)
            raise

    async def reattach(self) -> Endpoint:
        return await self.start()

    def _fail(self, e: ProviderError) -> None:
        self.set_status(
            State.STOPPED,
            str(e),
            step=e.step,
            reason=e.reason,
            details=e.details,
        )

    async def _bring_up(self, first: bool) -> Endpoint:
        starting = State.STARTING if first else State.LOST
        loop = asyncio.get_running_loop()
        timings: dict[str, float] = {}  # seconds per step, shown once ready (for figures)
        t0 = loop.time()

        def step(name: str, message: str) -> None:
            nonlocal t0
            now = loop.time()
            if timings:
                timings[list(timings)[-1]] = round(now - t0, 2)
            timings[name], t0 = 0.0, now
            self.set_status(starting, message, step=name, details={})

        step(STEP_CONNECTING, f"connecting to {self.host}")
        conn = await self._connect()
        self._conn = conn
        try:
            step(STEP_CHECKING, f"checking {self.host}")
            info = await self._check()
            running = info.get("running")
            if running and self._token:
                self._remote_sock = running["sock"]  # re-attach: the gateway kept running
            else:
                if _older(info.get("gateway"), local_gateway_version()):
                    have = info.get("gateway") or "none"
                    step(
                        STEP_INSTALLING,
                        f"installing the gateway {local_gateway_version()} on {self.host} "
                        f"(found: {have})",
                    )
                    await self._install()
                step(STEP_STARTING, f"starting the gateway on {self.host}")
                self._remote_sock = await self._start_gateway()
            await self._listen()
            self.endpoint = Endpoint(f"http://127.0.0.1:{self.local_port}", token=self._token)
        except BaseException:
            self._conn = None
            conn.close()
            raise
        timings[list(timings)[-1]] = round(loop.time() - t0, 2)
        self._connected.set()
        self.set_status(
            State.READY,
            f"connected to {self.host} (Python {info.get('python')})",
            details={
                "python": info.get("python"),
                "local_port": self.local_port,
                "reattached": bool(running and self._token),
                "timings": timings,
            },
        )
        if self._monitor is None or self._monitor.done():
            self._monitor = asyncio.ensure_future(self._watch())
        return self.endpoint

    async def _watch(self) -> None:
        """On a link drop: LOST, reconnect with back-off, re-attach (kernels keep running)."""
        while not self._stopping:
            conn = self._conn
            if conn is None:
                return
            await conn.wait_closed()
            if self._stopping or self._conn is not conn:
                return
            self._connected.clear()
            self._conn = None
            delay = 0.25
            while not self._stopping:
                self.set_status(State.LOST, f"SSH link to {self.host} lost; reconnecting")
                try:
                    await self._bring_up(first=False)
                    break
                except ProviderError as e:
                    if e.reason in ("host_key_changed", "host_key_unknown", "auth_refused"):
                        self._fail(e)  # retrying cannot fix these
                        return
                    self.set_status(
                        State.LOST,
                        f"SSH link to {self.host} lost; retrying in {delay:g} s ({e})",
                        step=e.step,
                        reason=e.reason,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max_delay)

    async def stop(self) -> None:
        """Stop the gateway on the host (kernels included), close the link and the port."""
        self._stopping = True
        if self._start_task is not None and not self._start_task.done():
            self._start_task.cancel()
        error = None
        conn = self._conn
        try:
            if conn is None and self._token:
                conn = self._conn = await self._connect()
            if conn is not None:
                res = await self._run_json(
                    [remote.VENV_PYTHON, "-c", remote.STOP], {}, "stopping", "stop_failed", 30
                )
                if res.exit_status != 0:
                    error = (res.stderr or "").strip()[-300:]
        except ProviderError as e:
            error = str(e)
        finally:
            self._connected.clear()
            if conn is not None:
                conn.close()
            self._conn = None
            if self._server is not None:
                self._server.close()
                self._server = None
            if self._monitor is not None:
                self._monitor.cancel()
        self._token = None
        if error:
            self.set_status(
                State.STOPPED, f"disconnected; the gateway may still run: {error}", step="stopping"
            )
            raise ProviderError(error, step="stopping", reason="stop_failed")
        self.set_status(State.STOPPED, "disconnected; the gateway on the host was stopped")
