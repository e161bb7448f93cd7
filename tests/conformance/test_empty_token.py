"""The gateway's token rule: an empty token is refused at start with a clear message (the
token is this API server's only protection; stock Kernel Gateway serves anyone instead)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.procs import REPO, free_port

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("ip", ["127.0.0.1", "0.0.0.0"])
def test_empty_token_is_refused_at_start(tmp_path, ip):
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_TOKEN"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "accel_gateway",
            f"--ip={ip}",
            f"--port={free_port()}",
            "--token=",
            f"--workspace={tmp_path}",
            f"--ServerApp.runtime_dir={tmp_path / 'runtime'}",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "An empty token is refused" in proc.stderr + proc.stdout
    assert "_xsrf" not in proc.stderr + proc.stdout
