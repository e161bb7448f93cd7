"""A notebook on a cluster runtime (a real one-node SLURM): while its job is pending (both GPUs
held) the notebook shows the job's state, reason and queue position, and Cancel cancels the job;
once running, a cell runs in the job and Manage sessions lists it (job id, node, time left) with
Cancel job. Needs root (the SLURM daemons), like tests/slurm."""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.slurm.cluster import Cluster, missing_tools
from tests.support.procs import start_server
from tests.support.waiting import wait_for

from .conftest import CHROMIUM, LabEnv, shot
from .lab import menu, open_notebook, run_cell, wait_idle

pytestmark = pytest.mark.browser


class SlurmLabEnv(LabEnv):
    """JupyterLab whose only runtime is the cluster runtime `hpc` (one GPU per job)."""

    def __init__(self, tmp: Path, cluster: Cluster):
        self.tmp, self.procs, self.cluster = tmp, [], cluster
        (tmp / "work").mkdir()
        clusters = {
            "runtimes": [
                {"name": "hpc", "display_name": "HPC GPU", "gpus": 1, "cpus": 1, "time_limit": "30"}
            ],
            "connection_dir": str(tmp / "conn"),
            "workdir": str(tmp / "work"),
            "bind_ip": "127.0.0.1",
            "advertise_host": "127.0.0.1",
            "poll_interval": 0.5,
            "gateway_python": sys.executable,
        }
        cfg = {
            "SlurmClusters": clusters,
            "AccelState": {"state_dir": str(tmp / "state")},
            "EmbeddedGateway": {"enabled": False},
            "LabApp": {
                "news_url": None,
                "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
            },
        }
        (tmp / "lab").mkdir()
        cfg_file = tmp / "lab" / "accel_config.json"
        cfg_file.write_text(json.dumps(cfg))
        env = {
            **cluster.env,
            "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"),
        }
        settings = tmp / "lab-settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        self.lab = self._keep(
            start_server(tmp / "lab", f"--config={cfg_file}", env=env, app="jupyterlab", timeout=90)
        )


@pytest.fixture(scope="module")
def lab_env():
    """Overrides conftest's: the browser fixtures then drive this JupyterLab."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    missing = missing_tools()
    if missing:
        pytest.skip(f"SLURM/munge not installed: {', '.join(missing)}")
    if os.getuid() != 0:
        pytest.skip("the one-node SLURM test cluster runs its daemons as root")
    tmp = Path(tempfile.mkdtemp(prefix="accel-browser-slurm-"))
    cluster = Cluster(tmp / "slurm")
    env = None
    try:
        cluster.start()
        env = SlurmLabEnv(tmp, cluster)
        yield env
    finally:
        if env is not None:
            env.stop()
        cluster.stop()


def test_pending_job_shows_reason_and_position_and_cancels(lab_env, page):
    cluster = lab_env.cluster
    holders = cluster.hold_gpus(2, seconds=300)
    try:
        lab_env.write_notebook("wait.ipynb", "accel--hpc--python3", ["print(1)"])
        page.goto(lab_env.url("/lab/tree/wait.ipynb?reset"))
        banner = page.locator(".jp-NotebookPanel .jp-AccelPendingJob")
        expect(banner).to_contain_text("Pending: Resources, 1st in queue", timeout=60000)
        expect(banner).to_contain_text("SLURM job")
        shot(page, "slurm-pending", doc=True)
        name = banner.get_attribute("data-job")
        job = lab_env.lab.api("GET", f"/accel/providers/slurm/jobs/{name}").json()
        job_id = job["provider"]["details"]["job_id"]
        assert cluster.state(job_id) == "PENDING"

        banner.locator("button", has_text="Cancel").click()
        expect(banner).to_be_hidden(timeout=20000)
        # the kernel start fails with the scheduler's answer and the job runtime is dropped
        expect(page.locator(".jp-Dialog")).to_contain_text("cancelled", timeout=20000)
        shot(page, "slurm-cancelled")
        r = lab_env.lab.api("GET", f"/accel/providers/slurm/jobs/{name}")
        assert r.status_code == 404 or r.json()["provider"]["state"] == "stopped", r.text
        assert job_id not in cluster.job_ids()
    finally:
        for job_id in holders:
            cluster.command("scancel", job_id)


def test_running_job_is_listed_in_manage_sessions_and_cancels(lab_env, page):
    lab_env.write_notebook("job.ipynb", "accel--hpc--python3", ["print(1)"])
    open_notebook(page, lab_env, "job.ipynb")
    session = wait_for(
        lambda: [
            s for s in lab_env.lab.api("GET", "/api/sessions").json() if s["path"] == "job.ipynb"
        ],
        60,
        "the notebook's session on the job",
    )
    wait_idle(page)  # the job's kernel (the indicator says idle while it initializes, too)
    page.wait_for_timeout(1500)
    expect(page.locator(".jp-NotebookPanel .jp-AccelPendingJob")).to_be_hidden()
    job_name = session[0]["kernel"]["name"].split("--")[1]
    job = lab_env.lab.api("GET", f"/accel/providers/slurm/jobs/{job_name}").json()
    job_id = job["provider"]["details"]["job_id"]
    assert lab_env.cluster.state(job_id) == "RUNNING"
    row = [s for s in lab_env.lab.api("GET", "/accel/sessions").json() if s["path"] == "job.ipynb"]
    assert row[0]["job"]["job_id"] == job_id and row[0]["job"]["node"] == "localhost"
    assert run_cell(page, 0, "import os; print(os.environ['SLURM_JOB_ID'])").strip() == job_id

    menu(page, "Runtime", "Manage sessions")
    dialog = page.locator(".jp-Dialog")
    jobs = dialog.locator(f"tr[data-job='{job_name}']")
    expect(jobs).to_contain_text(job_id, timeout=15000)
    expect(jobs).to_contain_text("localhost")
    expect(jobs).to_contain_text(re.compile(r"\d+m \d+s|\d+h \d+m"))  # time left
    expect(dialog.locator("tr", has_text="job.ipynb")).to_contain_text(job_name)
    shot(page, "manage-sessions-jobs", doc=True)
    jobs.locator("button", has_text="Cancel job").click()
    expect(jobs.locator("button", has_text="Cancel job")).to_have_count(0, timeout=20000)
    lab_env.cluster.wait_gone(job_id)
    dialog.locator("button", has_text="Close").click()
