"""Cluster runtimes through jupyter_server + jupyterlab_accel against a real one-node SLURM:
a session on a cluster runtime submits a job, the kernel runs in it; pending jobs show reason
and queue position; cancel; the job's time limit; the scheduler down."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from tests.server.conftest import get_json, server_with, start_session
from tests.support.kernel_ws import KernelClient
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def lab(slurm, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slurm-lab")
    (tmp / "work").mkdir()
    clusters = {
        "runtimes": [
            {
                "name": "hpc",
                "display_name": "HPC GPU",
                "partition": "gpu",
                "gpus": 1,
                "cpus": 1,
                "time_limit": "30",
            },
            {"name": "short", "gpus": 1, "cpus": 1, "time_limit": "1"},
        ],
        "connection_dir": str(tmp / "conn"),
        "workdir": str(tmp / "work"),
        "bind_ip": "127.0.0.1",
        "advertise_host": "127.0.0.1",
        "poll_interval": 0.5,
        "gateway_python": sys.executable,
        "cull_warning": 40,
    }
    server = server_with(tmp / "server", [], extra={"SlurmClusters": clusters})
    try:
        yield server
    finally:
        server.stop()


def runtimes(server) -> dict:
    return {r["name"]: r for r in get_json(server, "/accel/runtimes")}


def job_of(server, session: dict) -> dict:
    name = session["kernel"]["name"].split("--")[1]
    return get_json(server, f"/accel/providers/slurm/jobs/{name}")


def next_notice(kc: KernelClient) -> dict:
    """Content of the next accel_notice on the kernel's websocket."""
    while True:
        msg = kc.recv()
        if msg.get("msg_type") == "accel_notice" or msg["header"].get("msg_type") == "accel_notice":
            return msg["content"]


def start_in_thread(server, kernel_name: str, path: str) -> dict:
    """POST /api/sessions in a thread (it waits while the job is pending)."""
    result: dict = {}

    def go():
        r = server.api(
            "POST",
            "/api/sessions",
            json={"path": path, "type": "notebook", "name": path, "kernel": {"name": kernel_name}},
            timeout=180,
        )
        result["response"] = r

    result["thread"] = threading.Thread(target=go, daemon=True)
    result["thread"].start()
    return result


def test_cluster_runtime_listed_with_its_shape(cluster, lab):
    hpc = runtimes(lab)["hpc"]
    assert hpc["healthy"] and hpc["url"] is None
    assert hpc["provider"]["kind"] == "slurm-cluster"
    assert "1 GPU" in hpc["provider"]["message"] and "time limit 30" in hpc["provider"]["message"]
    spec = get_json(lab, "/api/kernelspecs")["kernelspecs"]["accel--hpc--python3"]
    assert spec["spec"]["metadata"]["accel"]["accelerator"] == "gpu"


def test_session_runs_in_a_job_and_ending_it_cancels_the_job(cluster, lab):
    s = start_session(lab, "accel--hpc--python3", "one.ipynb")
    job = job_of(lab, s)
    details = job["provider"]["details"]
    assert job["provider"]["state"] == "ready", job
    assert details["node"] == "localhost" and details["job_state"] == "RUNNING"
    assert 25 * 60 < details["time_left"] <= 30 * 60
    assert "token" not in str(job).lower().replace("token_", "")
    with KernelClient(lab.url, s["kernel"]["id"], lab.token) as kc:
        assert details["job_id"] in kc.eval("__import__('os').environ['SLURM_JOB_ID']")
    # Manage sessions data: the kernel's runtime is the job's
    sessions = get_json(lab, "/accel/sessions")
    mine = [x for x in sessions if x["kernel_id"] == s["kernel"]["id"]]
    assert mine and mine[0]["runtime"] == job["name"]
    assert lab.api("DELETE", f"/api/sessions/{s['id']}").status_code == 204
    cluster.wait_gone(details["job_id"], timeout=30)


def test_third_job_waits_with_reason_and_runs_when_one_ends(cluster, lab):
    first = start_session(lab, "accel--hpc--python3", "a.ipynb")
    second = start_session(lab, "accel--hpc--python3", "b.ipynb")
    jobs = {job_of(lab, s)["provider"]["details"]["job_id"] for s in (first, second)}
    assert len(jobs) == 2, "two notebooks, two jobs"
    third = start_in_thread(lab, "accel--hpc--python3", "c.ipynb")

    def pending():
        for job in get_json(lab, "/accel/providers/slurm/jobs"):
            p = job["provider"]
            if (
                p["details"].get("job_id") not in jobs
                and p["details"].get("job_reason") == "Resources"
            ):
                return job
        return None

    waiting = wait_for(pending, 30, "third job pending for resources")
    assert waiting["provider"]["state"] == "starting"
    assert waiting["provider"]["message"] == "Pending: Resources, 1st in queue"
    assert waiting["provider"]["details"]["queue_position"] == 1
    assert third["thread"].is_alive(), "the session start waits while the job is pending"
    assert lab.api("DELETE", f"/api/sessions/{first['id']}").status_code == 204
    third["thread"].join(90)
    r = third["response"]
    assert r.status_code == 201, r.text
    s3 = r.json()
    with KernelClient(lab.url, s3["kernel"]["id"], lab.token) as kc:
        assert waiting["provider"]["details"]["job_id"] in kc.eval(
            "__import__('os').environ['SLURM_JOB_ID']"
        )
    for s in (second, s3):
        lab.api("DELETE", f"/api/sessions/{s['id']}")


def test_cancel_while_pending_and_while_running(cluster, lab):
    cluster.hold_gpus(2)
    start = start_in_thread(lab, "accel--hpc--python3", "pending.ipynb")

    def pending():
        jobs = get_json(lab, "/accel/providers/slurm/jobs")
        return next(
            (j for j in jobs if j["provider"]["details"].get("job_state") == "PENDING"), None
        )

    job = wait_for(pending, 30, "job pending")
    r = lab.api("DELETE", f"/accel/providers/slurm/jobs/{job['name']}")
    assert r.status_code == 200 and r.json()["provider"]["state"] == "stopped"
    start["thread"].join(30)
    failed = start["response"]
    assert failed.status_code in (409, 503), failed.text
    assert "cancelled" in failed.text
    cluster.wait_gone(job["provider"]["details"]["job_id"])
    assert not [k for k in get_json(lab, "/api/kernels") if job["name"] in k["name"]]
    cluster.cancel_all()

    s = start_session(lab, "accel--hpc--python3", "running.ipynb")
    job = job_of(lab, s)
    with KernelClient(lab.url, s["kernel"]["id"], lab.token, timeout=20) as kc:
        kc.execute("x = 1")
        r = lab.api("DELETE", f"/accel/providers/slurm/jobs/{job['name']}")
        assert r.status_code == 200
        notice = next_notice(kc)
        assert notice["kind"] == "runtime_lost" and not notice["retrying"], notice
        assert "cancelled" in notice["message"], notice
        cluster.wait_gone(job["provider"]["details"]["job_id"])
    listed = runtimes(lab)[job["name"]]
    assert not listed["healthy"] and "cancelled" in listed["error"]
    lab.api("DELETE", f"/api/sessions/{s['id']}")


def test_time_limit_warns_then_the_job_ends(cluster, lab):
    """time_limit 1 (minute): a cull warning from the job's gateway, then the scheduler's end."""
    s = start_session(lab, "accel--short--python3", "short.ipynb")
    job = job_of(lab, s)
    assert job["provider"]["details"]["time_limit"] == "1"
    kid = s["kernel"]["id"]
    r = lab.api("POST", f"/accel/kernels/{kid}/keepalive")
    assert r.status_code == 200, r.text
    assert r.json()["extended"] is False and "cannot be extended" in r.json()["message"]
    with KernelClient(lab.url, kid, lab.token, timeout=100) as kc:
        kc.execute("x = 1")
        warning = next_notice(kc)
        assert warning["kind"] == "cull_warning", warning
        assert warning["reason"] == "lifetime" and warning["seconds_left"] <= 40
        ended = next_notice(kc)
        while ended["kind"] == "culled":  # the gateway's own cull may come first
            ended = next_notice(kc)
        assert ended["kind"] == "runtime_lost" and not ended["retrying"], ended
        assert "time limit" in ended["message"], ended
    listed = get_json(lab, f"/accel/providers/slurm/jobs/{job['name']}")
    assert listed["provider"]["state"] == "stopped"
    assert "time limit" in listed["provider"]["message"]
    cluster.wait_gone(job["provider"]["details"]["job_id"])
    lab.api("DELETE", f"/api/sessions/{s['id']}")


def test_controller_down_clear_error_nothing_left(cluster, lab):
    before = set(runtimes(lab))
    cluster.stop_controller()
    t0 = time.monotonic()
    r = lab.api(
        "POST",
        "/api/sessions",
        json={
            "path": "x.ipynb",
            "type": "notebook",
            "name": "x",
            "kernel": {"name": "accel--hpc--python3"},
        },
        timeout=120,
    )
    assert r.status_code == 503, r.text
    assert "Could not submit a job" in r.text and "sbatch" in r.text
    assert time.monotonic() - t0 < 60
    assert set(runtimes(lab)) == before, "no job runtime left behind"
    assert not get_json(lab, "/api/sessions")
