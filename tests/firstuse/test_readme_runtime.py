"""README "Adding a runtime", run as written on a second "host": another venv, home and port.

The README's code blocks are read from README.md and run in order. What differs from a real
second machine, and why:
- the venv is made with --system-site-packages, so pip finds the dependencies already installed
  instead of downloading them (the README's pip line itself runs unchanged);
- HOST is localhost, /home/gpu a temporary folder, port 8899 a free port, and the unit's
  `--ip=0.0.0.0` becomes 127.0.0.1 (tests listen on loopback only);
- the systemd unit is not installed: its ExecStart runs with the environment systemd gives a
  service (PATH without the venv, the EnvironmentFile's variables);
- "Connect to runtime" is the REST call its dialog makes (POST /accel/runtimes), with the
  certificate trusted through SSL_CERT_FILE, one of the two ways the README gives.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time

from tests.support.kernel_ws import KernelClient
from tests.support.procs import REPO, free_port, launch, start_server

README_HOST = "gpu-box.example.org"
README_HOME = "/home/gpu"


def readme_blocks() -> list[tuple[str, str]]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Adding a runtime", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, re.S)


def replaced(text: str, old: str, new: str) -> str:
    assert old in text, f"the README no longer says {old!r}"
    return text.replace(old, new)


def bash(script: str, env: dict, timeout: float = 300) -> None:
    p = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert p.returncode == 0, f"{script}\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}"


def unit_service(unit: str) -> dict:
    """The [Service] settings of a systemd unit (continuation lines joined)."""
    unit = re.sub(r"\\\n\s*", " ", unit)
    section, out = None, {}
    for line in unit.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line:
            key, _, value = line.partition("=")
            out[key] = value
    return out


def runtime_spec(server, runtime: str) -> str:
    """The kernel spec the server offers for `runtime` (its python3 where there are several)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        specs = server.api("GET", "/api/kernelspecs").json()["kernelspecs"]
        names = sorted(
            n
            for n, s in specs.items()
            if ((s.get("spec") or {}).get("metadata") or {}).get("accel", {}).get("runtime")
            == runtime
        )
        if names:
            return next((n for n in names if n.endswith("python3")), names[0])
        time.sleep(0.5)
    raise AssertionError(f"no kernel spec of runtime {runtime!r}: {sorted(specs)}")


def wait_healthy(server, name: str) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = {r["name"]: r for r in server.api("GET", "/accel/runtimes").json()}
        if listed.get(name, {}).get("healthy"):
            return listed[name]
        time.sleep(0.5)
    raise AssertionError(f"runtime {name!r} not healthy: {listed.get(name)}")


def test_readme_adding_a_runtime_as_written(tmp_path):
    blocks = readme_blocks()
    assert [lang for lang, _ in blocks] == ["bash", "bash", "ini", "python"]
    install, certificate, unit, server_config = (body for _, body in blocks)
    home = tmp_path / "home" / "gpu"
    home.mkdir(parents=True)
    shell_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    shell_env["HOME"] = str(home)
    shell_env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"])

    # 1. Install (the venv borrows this machine's packages: see the module docstring).
    bash(
        replaced(install, "python3 -m venv ", "python3 -m venv --system-site-packages "), shell_env
    )
    venv_bin = home / "accel-gateway" / "bin"
    assert (venv_bin / "jupyter-accel-gateway").exists()

    # 2. Certificate and token.
    bash(replaced(certificate, f"HOST={README_HOST}", "HOST=localhost"), shell_env)
    secrets = home / ".accel-gateway"
    assert oct((secrets / "token.env").stat().st_mode & 0o777) == "0o600"

    # 3. The unit's command, with the environment systemd gives it.
    port = free_port()

    def here(text: str) -> str:
        return text.replace(README_HOME, str(home))

    def command(text: str) -> list[str]:
        text = replaced(here(text), "--port=8899", f"--port={port}")
        return shlex.split(replaced(text, "--ip=0.0.0.0", "--ip=127.0.0.1"))

    service = unit_service(unit)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    for line in open(here(service["EnvironmentFile"])).read().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    token = env["JUPYTER_TOKEN"]
    cert = str(secrets / "cert.pem")
    gw = launch(
        "README gateway",
        command(service["ExecStart"]),
        env,
        here(service["WorkingDirectory"]),
        tmp_path / "gateway.log",
        f"https://localhost:{port}",
        token,
        home / "content",
        port,
        "/api/kernelspecs",
        90,
        verify=cert,
    )
    server = None
    try:
        # The gateway is the venv's copy, and its rclone is found without PATH.
        assert gw.proc.poll() is None
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "hello.txt").write_text("hello")
        body = {"source": str(tmp_path / "data"), "mode": "sync", "mount_point": "drive"}
        r = gw.api("POST", "/api/accel/mounts", json=body, verify=cert, timeout=120)
        assert r.status_code == 201, r.text
        assert (home / "content" / "drive" / "hello.txt").read_text() == "hello"

        # 4. JupyterLab's server: the config as written, and the Connect dialog's call.
        trusted = tmp_path / "me" / ".jupyter" / "gpu-box.pem"
        trusted.parent.mkdir(parents=True)
        shutil.copy(cert, trusted)
        config = replaced(server_config, f"https://{README_HOST}:8899", f"https://localhost:{port}")
        config = replaced(config, "/home/me/.jupyter/gpu-box.pem", str(trusted))
        config_file = tmp_path / "jupyter_server_config.py"
        config_file.write_text("c = get_config()  # noqa\n" + config)
        server = start_server(
            tmp_path / "server",
            f"--config={config_file}",
            "--EmbeddedGateway.enabled=False",
            f"--AccelState.state_dir={tmp_path / 'state'}",  # never the user's own state
            env={"GPU_BOX_TOKEN": token, "SSL_CERT_FILE": str(trusted)},
        )
        assert wait_healthy(server, "gpu-box")["display_name"] == "GPU box"
        r = server.api(
            "POST",
            "/accel/runtimes",
            json={
                "name": "gpu-box-ui",
                "url": f"https://localhost:{port}",
                "token": token,
                "display_name": "GPU box (dialog)",
            },
        )
        assert r.status_code in (200, 201), r.text
        assert token not in r.text
        assert wait_healthy(server, "gpu-box-ui")["display_name"] == "GPU box (dialog)"

        for runtime in ("gpu-box", "gpu-box-ui"):
            spec = runtime_spec(server, runtime)
            r = server.api(
                "POST",
                "/api/sessions",
                json={"path": f"{runtime}.ipynb", "type": "notebook", "kernel": {"name": spec}},
            )
            assert r.status_code == 201, r.text
            session = r.json()
            with KernelClient(server.url, session["kernel"]["id"], server.token, 120) as kc:
                out = kc.execute("import os; print(os.getcwd())", timeout=120)
            assert out["reply"]["status"] == "ok", out
            assert out["stdout"].strip() == str(home / "content"), out
            server.api("DELETE", f"/api/sessions/{session['id']}")
    finally:
        if server is not None:
            server.stop()
        gw.stop()
