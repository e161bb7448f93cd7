"""A restarted server re-adopts the job its kernel runs in (slurm-jobs.json in the state folder)
and the kernel is re-attached: the cell's variable is still there."""

from __future__ import annotations

import json
import sys

import pytest

from tests.server.conftest import get_json, server_with, start_session
from tests.slurm.test_server import wait_for
from tests.support.kernel_ws import KernelClient

pytestmark = pytest.mark.timeout(240)


def test_restart_reattaches_to_the_running_job(cluster, tmp_path):
    (tmp_path / "work").mkdir()
    clusters = {
        "runtimes": [{"name": "hpc", "gpus": 1, "cpus": 1, "time_limit": "30"}],
        "connection_dir": str(tmp_path / "conn"),
        "workdir": str(tmp_path / "work"),
        "bind_ip": "127.0.0.1",
        "advertise_host": "127.0.0.1",
        "poll_interval": 0.5,
        "gateway_python": sys.executable,
    }
    extra = {"SlurmClusters": clusters}
    server = server_with(tmp_path / "server", [], extra=extra)
    try:
        s = start_session(server, "accel--hpc--python3", "r.ipynb")
        kid, job_rt = s["kernel"]["id"], s["kernel"]["name"].split("--")[1]
        job_id = get_json(server, f"/accel/providers/slurm/jobs/{job_rt}")["provider"]["details"][
            "job_id"
        ]
        with KernelClient(server.url, kid, server.token) as kc:
            kc.execute("kept = 'still here'")
    finally:
        server.stop()
    stored = json.loads((tmp_path / "server" / "state" / "slurm-jobs.json").read_text())
    assert [r["job_id"] for r in stored] == [job_id]
    assert "token" not in json.dumps(stored)
    assert job_id in cluster.job_ids(), "the job outlives the server"
    again = server_with(tmp_path / "server", [], extra=extra)
    try:
        ready = wait_for(
            lambda: (
                get_json(again, f"/accel/providers/slurm/jobs/{job_rt}")["provider"]["state"]
                == "ready"
            ),
            30,
            "job runtime re-attached",
        )
        assert ready
        with KernelClient(again.url, kid, again.token) as kc:
            assert kc.eval("kept") == "'still here'"
        assert again.api("DELETE", f"/api/kernels/{kid}").status_code == 204
        cluster.wait_gone(job_id, timeout=30)
    finally:
        again.stop()
