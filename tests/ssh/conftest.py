"""A real sshd on 127.0.0.1 (own config, host key, pid file) and a test user with key auth:
the "remote host" is this machine as another user with another home. Needs root (useradd)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.support.procs import free_port

SSHD = "/usr/sbin/sshd"
USER = "accelssh"


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def _keygen(path: Path, passphrase: str = "") -> str:
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "", "-f", str(path))
    return path.with_suffix(".pub").read_text().strip()


def fingerprint(pub_file: Path) -> str:
    return _run("ssh-keygen", "-l", "-E", "sha256", "-f", str(pub_file)).split()[1]


def ensure_user() -> pwd.struct_passwd:
    try:
        pwd.getpwnam(USER)
    except KeyError:
        _run("useradd", "-m", "-s", "/bin/sh", USER)
    _run("usermod", "-p", "*", USER)  # unlocked for key auth, no password
    return pwd.getpwnam(USER)


def user_processes() -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["username", "name", "cmdline"]):
        if p.info["username"] == USER:
            out.append(p)
    return out


def gateway_processes() -> list[psutil.Process]:
    """The test user's processes that are not sshd (a gateway, its kernels)."""
    return [p for p in user_processes() if p.info["name"] != "sshd"]


def kill_ssh_sessions() -> int:
    """SIGKILL the sshd children serving the test user's connections: the link drops."""
    n = 0
    for p in user_processes():
        if p.info["name"] == "sshd":
            p.kill()
            n += 1
    return n


@dataclass
class SSHHost:
    port: int
    dir: Path
    ssh_config: Path
    host_key_pub: Path
    user: pwd.struct_passwd
    proc: subprocess.Popen

    @property
    def home(self) -> Path:
        return Path(self.user.pw_dir)

    def known_hosts_line(self) -> str:
        return f"[localhost]:{self.port} {self.host_key_pub.read_text().strip()}"


def _wait_port(port: int, proc, timeout=10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("sshd exited")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError("sshd did not listen")


def start_sshd(d: Path) -> SSHHost:
    """sshd on 127.0.0.1 for the test user, its keys and an ssh_config with aliases, in d."""
    user = ensure_user()
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    host_key = d / "host_ed25519"
    _keygen(host_key)
    client_key = d / "client_ed25519"
    client_pub = _keygen(client_key)
    stranger_key = d / "stranger_ed25519"
    _keygen(stranger_key)
    other_host_key = d / "other_host_ed25519"
    _keygen(other_host_key)
    # the client's key is authorized for the test user
    ssh_dir = Path(user.pw_dir) / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(client_pub + "\n")
    for p in (ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(p, user.pw_uid, user.pw_gid)
    port = free_port()
    closed_port = free_port()
    cfg = d / "sshd_config"
    cfg.write_text(
        f"""ListenAddress 127.0.0.1
Port {port}
HostKey {host_key}
PidFile {d / "sshd.pid"}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
StrictModes no
AllowUsers {USER}
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel VERBOSE
"""
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-f", str(cfg), "-E", str(d / "sshd.log")])
    _wait_port(port, proc)
    ssh_config = d / "ssh_config"
    common = f"  HostName 127.0.0.1\n  Port {port}\n  User {USER}\n  IdentitiesOnly yes\n"
    ssh_config.write_text(
        # gpu-box by name (localhost), so its accepted key is recorded for that name only
        f"Host gpu-box\n{common.replace('127.0.0.1', 'localhost')}"
        f"  IdentityFile {client_key}\n\n"
        f"Host changed-box\n{common}  IdentityFile {client_key}\n  HostKeyAlias changed-box\n\n"
        f"Host known-box\n{common}  IdentityFile {client_key}\n  HostKeyAlias known-box\n\n"
        f"Host stranger-box\n{common}  IdentityFile {stranger_key}\n  HostKeyAlias known-box\n\n"
        f"Host nowhere\n  HostName 127.0.0.1\n  Port {closed_port}\n  User {USER}\n"
    )
    # known_hosts lines: changed-box has another key on record, known-box the right one
    (d / "known_hosts_lines").write_text(
        "changed-box " + other_host_key.with_suffix(".pub").read_text().strip() + "\n"
        "known-box " + host_key.with_suffix(".pub").read_text().strip() + "\n"
    )
    host = SSHHost(port, d, ssh_config, host_key.with_suffix(".pub"), user, proc)
    return host


def stop_sshd(host: SSHHost) -> None:
    host.proc.terminate()
    try:
        host.proc.wait(10)
    except subprocess.TimeoutExpired:
        host.proc.kill()
    for p in gateway_processes():  # nothing of a failed test left running as the user
        p.kill()


@pytest.fixture(scope="session")
def ssh_host(tmp_path_factory):
    if os.geteuid() != 0 or not os.path.exists(SSHD):
        pytest.skip("needs root and openssh-server (Debian) for a test user and sshd")
    host = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield host
    stop_sshd(host)


def fresh_install(host: SSHHost) -> None:
    """Remove what the provider keeps on the host, so the next connect installs."""
    shutil.rmtree(host.home / ".cache" / "jupyterlab-accel", ignore_errors=True)
