"""Enterprise Gateway as a benchmark target, in its own venv.

Enterprise Gateway 3.3 pins jupyter_server<2 and jupyter_client<7, so it cannot share the global
environment with jupyter_server 2. `ensure_venv` makes `python -m venv DIR` and pip-installs
`jupyter_enterprise_gateway ipykernel` there once; `start_enterprise_gateway` runs it on loopback
with its token in the environment (EG_AUTH_TOKEN), never on the command line.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from tests.support.procs import Proc, free_port, launch


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path, log=sys.stderr) -> str | None:
    """Create the venv if missing. Returns None when ready, else why it is not."""
    exe = venv / "bin" / "jupyter-enterprisegateway"
    if exe.exists():
        return None
    try:
        if not venv_python(venv).exists():
            subprocess.run(
                [sys.executable, "-m", "venv", str(venv)],
                check=True,
                capture_output=True,
                timeout=300,
            )
        print(f"installing Enterprise Gateway into {venv} ...", file=log, flush=True)
        r = subprocess.run(
            [
                str(venv_python(venv)),
                "-m",
                "pip",
                "install",
                "-q",
                "jupyter_enterprise_gateway",
                "ipykernel",
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (subprocess.SubprocessError, OSError) as e:
        return f"venv/pip failed: {e}"
    if r.returncode != 0 or not exe.exists():
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        return "pip install jupyter_enterprise_gateway failed: " + " | ".join(tail)
    return None


def start_enterprise_gateway(workdir: Path, venv: Path, timeout: float = 60) -> Proc:
    """Enterprise Gateway 3.x, local kernels (its default process proxy), no iopub cap (EG sets none)."""
    token = secrets.token_hex(16)
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"enterprise-gateway-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "JUPYTER"))}
    env.update(
        {
            "EG_AUTH_TOKEN": token,
            "JUPYTER_NO_CONFIG": "1",
            # Kernels are refused for 'root' by default (EG_UNAUTHORIZED_USERS=root); the bench may run as root.
            "EG_UNAUTHORIZED_USERS": "nobody-accel-bench",
            # The venv's kernelspec runs `python`: make that the venv's.
            "PATH": os.pathsep.join([str(venv / "bin"), env.get("PATH", "")]),
            "PYTHONUNBUFFERED": "1",
        }
    )
    cmd = [str(venv / "bin" / "jupyter-enterprisegateway"), "--ip=127.0.0.1", f"--port={port}"]
    return launch(
        "Enterprise Gateway",
        cmd,
        env,
        workdir,
        log,
        f"http://127.0.0.1:{port}",
        token,
        workdir,
        port,
        "/api/kernelspecs",
        timeout,
    )
