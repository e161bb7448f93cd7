"""SlurmJobProvider against a real one-node SLURM: submit, pending, running, connect, cancel."""

from __future__ import annotations

import asyncio
import os
import stat
import sys

import pytest
import requests

from jupyterlab_accel.providers import ProviderError, State
from jupyterlab_accel.providers.slurm import ClusterShape, ShapeError, SlurmClusters
from jupyterlab_accel.providers.slurm_client import SlurmError
from tests.support.kernel_ws import KernelClient


def clusters(tmp_path, **kw) -> SlurmClusters:
    (tmp_path / "work").mkdir(exist_ok=True)
    return SlurmClusters(
        connection_dir=str(tmp_path / "conn"),
        workdir=str(tmp_path / "work"),
        bind_ip="127.0.0.1",
        advertise_host="127.0.0.1",
        poll_interval=0.5,
        gateway_python=sys.executable,
        **kw,
    )


GPU1 = ClusterShape.from_config({"name": "gpu1", "gpus": 1, "cpus": 1, "time_limit": "10"})


def run(coro, timeout=90):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_shape_options_and_validation():
    shape = ClusterShape.from_config(
        {
            "name": "a100",
            "partition": "gpu",
            "gpus": 2,
            "gpu_type": "a100",
            "memory": "64G",
            "cpus": 8,
            "time_limit": "2:00:00",
            "account": "proj1",
            "extra_options": ["--qos=short"],
        }
    )
    assert shape.sbatch_options() == [
        "--job-name=accel-a100",
        "--partition=gpu",
        "--account=proj1",
        "--gres=gpu:a100:2",
        "--cpus-per-task=8",
        "--mem=64G",
        "--time=2:00:00",
        "--qos=short",
    ]
    assert shape.lifetime == 7200
    gpus = ClusterShape.from_config({"name": "g", "gpus": 1, "gpu_option": "gpus"})
    assert "--gpus=1" in gpus.sbatch_options()
    for bad, words in [
        ({"name": "x", "gpus": -1}, "gpus"),
        ({"name": "x", "partition": "gpu; rm -rf"}, "partition"),
        ({"name": "x", "time_limit": "soon"}, "time_limit"),
        ({"name": "x", "bogus": 1}, "unknown"),
    ]:
        with pytest.raises(ShapeError, match=words):
            ClusterShape.from_config(bad)


def test_job_runs_gateway_and_kernel_sees_job_id(cluster, tmp_path):
    cfg = clusters(tmp_path)
    job = cfg.new_job("gpu1-a", GPU1)
    seen = []
    job.on_change(lambda p: seen.append((p.state, p.message)))
    endpoint = run(job.start())
    try:
        assert job.state == State.READY
        assert job.status.details["node"] == "localhost"
        assert job.status.details["time_left"] > 500
        conn = tmp_path / "conn" / f"{job.job_id}.json"
        assert stat.S_IMODE(conn.stat().st_mode) == 0o600
        assert stat.S_IMODE(conn.parent.stat().st_mode) == 0o700
        headers = {"Authorization": f"token {endpoint.token}"}
        assert requests.get(endpoint.url + "/api/kernelspecs", timeout=5).status_code == 403
        r = requests.post(endpoint.url + "/api/kernels", json={"name": "python3"}, headers=headers)
        assert r.status_code == 201, r.text
        with KernelClient(endpoint.url, r.json()["id"], endpoint.token) as kc:
            got = kc.eval("__import__('os').environ.get('SLURM_JOB_ID')")
            assert job.job_id in got
            assert "JUPYTER_TOKEN" not in kc.eval("sorted(__import__('os').environ)")
        # the token never went through the scheduler: not in the job's environment record
        show = cluster.command("scontrol", "show", "job", job.job_id).stdout
        assert endpoint.token not in show
        assert os.environ.get("JUPYTER_TOKEN", "unset") not in show
    finally:
        run(job.stop())
    assert job.state == State.STOPPED
    assert not (tmp_path / "conn" / f"{job.job_id}.json").exists()
    cluster.wait_gone(job.job_id)
    assert any(s == State.STARTING for s, _ in seen)


def test_pending_reason_position_and_cancel(cluster, tmp_path):
    cfg = clusters(tmp_path)
    # two jobs take both GPUs; the third waits for resources
    cluster.hold_gpus(2)
    job = cfg.new_job("gpu1-b", GPU1)

    async def scenario():
        task = asyncio.ensure_future(job.start())
        for _ in range(100):
            await asyncio.sleep(0.2)
            if job.status.details.get("job_reason") == "Resources":
                break
        assert job.state == State.STARTING
        assert job.message.startswith("Pending: Resources"), (
            job.message,
            cluster.command("squeue").stdout,
        )
        assert job.message.endswith("1st in queue"), job.message
        assert job.status.details["job_state"] == "PENDING"
        await job.stop()
        with pytest.raises(ProviderError, match="cancelled"):
            await task

    run(scenario())
    assert job.state == State.STOPPED
    cluster.wait_gone(job.job_id)


def test_controller_down_clear_error_nothing_left(cluster, tmp_path):
    cfg = clusters(tmp_path)
    cfg.client.command_timeout = 10
    before = cluster.job_ids(active=False)
    cluster.stop_controller()
    job = cfg.new_job("gpu1-c", GPU1)
    with pytest.raises(ProviderError, match="Could not submit a job"):
        run(job.start(), timeout=60)
    assert job.state == State.STOPPED
    assert job.status.reason == "submit_failed"
    assert job.job_id is None
    cluster.start_controller()
    assert cluster.job_ids(active=False) == before  # no job was queued


def test_client_error_is_the_schedulers_message(cluster, tmp_path):
    cfg = clusters(tmp_path)
    bad = ClusterShape.from_config({"name": "bad", "partition": "nosuch"})
    with pytest.raises(SlurmError, match="(?i)partition"):
        run(cfg.client.submit(cfg.script(bad), cfg.job_options(bad)))
