"""The batch job that runs our gateway on the allocated node, and its private channel.

The job makes a fresh token itself (it never goes through the scheduler, whose job records
other users and admins can read), starts the gateway with it in the environment, waits until it
answers, then writes `{job_id, url, token}` to `<connection_dir>/<job_id>.json` with mode 0600
in a 0700 folder of the user's home (the shared filesystem). The server reads that file, checks
owner and mode, and connects. The file is removed when the job ends."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

JOB_SCRIPT = """#!{python}
# jupyterlab-accel: runs the accelerator gateway for the duration of this job.
import json, os, secrets, signal, socket, subprocess, sys, time, urllib.request

CONNECTION_DIR = os.path.expanduser({connection_dir!r})
BIND = {bind!r}
ADVERTISE = {advertise!r}
GATEWAY_ARGS = {gateway_args!r}

job_id = os.environ["SLURM_JOB_ID"]
token = secrets.token_hex(24)
with socket.socket() as s:
    s.bind((BIND, 0))
    port = s.getsockname()[1]
host = ADVERTISE or socket.getfqdn()
env = dict(os.environ, JUPYTER_TOKEN=token)
workspace = os.environ.get("ACCEL_WORKSPACE") or os.getcwd()
cmd = [sys.executable, "-m", "accel_gateway", "--ip=" + BIND, "--port=%d" % port,
       "--workspace=" + workspace, *GATEWAY_ARGS]
gateway = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
path = os.path.join(CONNECTION_DIR, job_id + ".json")


def finish(*_):
    try:
        gateway.terminate()
    except OSError:
        pass


signal.signal(signal.SIGTERM, finish)
signal.signal(signal.SIGINT, finish)
probe = urllib.request.Request(
    "http://%s:%d/api/kernelspecs" % ("127.0.0.1" if BIND in ("0.0.0.0", "") else BIND, port),
    headers={{"Authorization": "token " + token}},
)
while gateway.poll() is None:
    try:
        urllib.request.urlopen(probe, timeout=2).close()
        break
    except Exception:
        time.sleep(0.2)
if gateway.poll() is None:
    os.makedirs(CONNECTION_DIR, mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({{"job_id": job_id, "url": "http://%s:%d" % (host, port), "token": token}}, f)
    os.replace(tmp, path)
    print("jupyterlab-accel: gateway ready on %s:%d" % (host, port), flush=True)
try:
    rc = gateway.wait()
finally:
    try:
        os.unlink(path)
    except OSError:
        pass
sys.exit(rc)
"""


def job_script(
    python: str, connection_dir: str, bind: str, advertise: str, gateway_args: list[str]
) -> str:
    """The batch script (Python, so it needs nothing on the node but the gateway's Python)."""
    return JOB_SCRIPT.format(
        python=python,
        connection_dir=connection_dir,
        bind=bind,
        advertise=advertise,
        gateway_args=list(gateway_args),
    )


class ConnectionFileError(Exception):
    """The connection file exists but cannot be trusted or read."""


def read_connection(connection_dir: str, job_id: str) -> dict | None:
    """`{url, token}` the job wrote; None while it is not there yet.

    Refused unless the file belongs to this user and nobody else can read it."""
    path = Path(connection_dir).expanduser() / f"{job_id}.json"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConnectionFileError(f"cannot open {path.name}: {e.strerror}") from None
    with os.fdopen(fd) as f:
        st = os.fstat(f.fileno())
        if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
            raise ConnectionFileError(
                f"connection file of job {job_id} is not private (owner or mode): refused"
            )
        try:
            data = json.load(f)
        except ValueError:
            return None  # being written (the job writes a temp file and renames it)
    if not isinstance(data, dict) or str(data.get("job_id")) != str(job_id):
        raise ConnectionFileError(f"connection file of job {job_id} names another job")
    if not isinstance(data.get("url"), str) or not isinstance(data.get("token"), str):
        raise ConnectionFileError(f"connection file of job {job_id} lacks url or token")
    return {"url": data["url"], "token": data["token"]}


def remove_connection(connection_dir: str, job_id: str) -> None:
    try:
        (Path(connection_dir).expanduser() / f"{job_id}.json").unlink()
    except OSError:
        pass
