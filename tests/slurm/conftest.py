"""A one-node SLURM cluster (session-wide) and its environment for the SLURM tests."""

from __future__ import annotations

import os

import pytest

from tests.slurm.cluster import Cluster, missing_tools


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    missing = missing_tools()
    if missing:
        pytest.skip(f"SLURM/munge not installed: {', '.join(missing)}")
    if os.getuid() != 0:
        pytest.skip("the one-node SLURM test cluster runs its daemons as root")
    cluster = Cluster(tmp_path_factory.mktemp("slurm"))
    old = os.environ.get("SLURM_CONF")
    try:
        cluster.start()
        os.environ["SLURM_CONF"] = cluster.env["SLURM_CONF"]
        yield cluster
    finally:
        cluster.stop()
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old


@pytest.fixture
def cluster(slurm):
    """The cluster, with every job of the test cancelled afterwards."""
    if slurm.slurmctld is None:
        slurm.start_controller()
    yield slurm
    if slurm.slurmctld is None:
        slurm.start_controller()
    slurm.cancel_all()
