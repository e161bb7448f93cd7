"""Bad input to the gateway: settings that stop its start, kernel start `env` refused with 400."""

from __future__ import annotations

import subprocess
import sys

import pytest
from accel_gateway.allocation import DeviceAllocator
from accel_gateway.limits import KernelLimits
from accel_gateway.metrics import MetricsSampler
from accel_gateway.mounts.manager import MountManager
from traitlets import TraitError
from traitlets.config import Config

from tests.support.procs import REPO, free_port


@pytest.mark.parametrize(
    "setting, named",
    [
        ("--KernelLimits.check_interval=0", "KernelLimits.check_interval"),
        ("--MetricsSampler.interval=0", "MetricsSampler.interval"),
        ("--DeviceAllocator.devices_per_kernel=-1", "DeviceAllocator.devices_per_kernel"),
        ("--KernelLimits.max_kernels=-1", "KernelLimits.max_kernels"),
    ],
)
def test_bad_setting_stops_the_start_naming_it(tmp_path, setting, named):
    (tmp_path / "ws").mkdir()
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "accel_gateway",
            "--ip=127.0.0.1",
            f"--port={free_port()}",
            f"--workspace={tmp_path / 'ws'}",
            f"--ServerApp.runtime_dir={tmp_path / 'rt'}",
            setting,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert p.returncode == 1, p.stdout + p.stderr
    assert named in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]


@pytest.mark.parametrize(
    "cls, trait, value",
    [
        (KernelLimits, "idle_timeout", -1.0),
        (KernelLimits, "max_lifetime", float("nan")),
        (KernelLimits, "cull_warning", float("inf")),
        (KernelLimits, "check_interval", -5.0),
        (MountManager, "sync_interval", 0.0),
        (MountManager, "watchdog_interval", 0.0),
        (MountManager, "dir_cache_time", 0.0),
        (MountManager, "flush_timeout", -1.0),
        (MountManager, "write_back", -1.0),
        (MountManager, "max_restarts", -1),
    ],
)
def test_each_bad_value_is_refused_by_name(cls, trait, value):
    with pytest.raises(TraitError, match=f"{cls.__name__}.{trait}"):
        cls(config=Config({cls.__name__: {trait: value}}))


def test_good_values_pass():
    assert KernelLimits(config=Config({"KernelLimits": {"idle_timeout": 0}})).idle_timeout == 0
    assert DeviceAllocator([0], config=Config()).devices_per_kernel is None
    conf = Config({"DeviceAllocator": {"devices_per_kernel": 0}})
    assert DeviceAllocator([0], config=conf).default_count == 0
    conf = Config({"MetricsSampler": {"interval": 0.25}})
    assert MetricsSampler(None, None, "/", config=conf).interval == 0.25


def test_bad_kernel_env_is_400_naming_the_variable(gateway):
    cases = [
        ({"KERNEL_X": "a\0b"}, "KERNEL_X"),
        ({"KERNEL_A=B": "1"}, "KERNEL_A=B"),
        ({"KERNEL_BIG": "x" * 200_000}, "KERNEL_BIG"),
        ({"": "1"}, "''"),
        ({"KERNEL_N": None}, "KERNEL_N"),
        ({"KERNEL_D": {"a": 1}}, "KERNEL_D"),
        ({f"KERNEL_{i}": "v" for i in range(300)}, "300"),
        ({f"KERNEL_{i}": "v" * 30_000 for i in range(10)}, "in all"),
    ]
    for env, named in cases:
        r = gateway.api("POST", "/api/kernels", json={"name": "python3", "env": env})
        assert r.status_code == 400, (named, r.status_code, r.text[:300])
        body = r.json()
        assert body["reason"] == "bad_request" and named in body["message"], body
    assert gateway.api("GET", "/api/kernels").json() == []
    # A well-formed env still starts a kernel, and the KERNEL_ variable reaches it.
    r = gateway.api("POST", "/api/kernels", json={"name": "python3", "env": {"KERNEL_OK": "é 1"}})
    assert r.status_code == 201, r.text
    gateway.api("DELETE", f"/api/kernels/{r.json()['id']}")
