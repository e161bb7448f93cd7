"""Gateway logic without HTTP: allocator, limits, backend selection (no process starts)."""

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from accel_gateway.allocation import DeviceAllocator, Refused, requested_count
from accel_gateway.devices import DeviceSelector
from accel_gateway.devices.nvidia import NvidiaBackend
from accel_gateway.limits import KernelLimits, notice
from traitlets.config import Config


def test_exclusive_allocator_refuses_then_frees():
    a = DeviceAllocator([0, 1])
    assert a.allocate("k1") == [0] and a.allocate("k2") == [1]
    with pytest.raises(Refused) as e:
        a.allocate("k3")
    assert e.value.reason == "no_free_device" and "0 of 2 free" in e.value.message
    assert a.allocate("k4", 0) == []
    a.release("k1")
    assert a.allocate("k3") == [0]
    with pytest.raises(Refused):
        a.allocate("k5", 3)


def test_shared_allocator_spreads_load():
    a = DeviceAllocator([0, 1], config=Config({"DeviceAllocator": {"policy": "shared"}}))
    assert [a.allocate(k) for k in ("a", "b", "c", "d")] == [[0], [1], [0], [1]]
    assert a.allocate("e", 2) == [0, 1]
    assert DeviceAllocator([]).default_count == 0


def test_requested_count():
    assert requested_count({}) is None and requested_count({"KERNEL_ACCEL_DEVICES": " 2 "}) == 2
    for bad in ("x", "-1", "1.5"):
        with pytest.raises(ValueError):
            requested_count({"KERNEL_ACCEL_DEVICES": bad})


def test_limits_expiry_and_notices():
    lim = KernelLimits(config=Config({"KernelLimits": {"idle_timeout": 60, "max_lifetime": 600}}))
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    e = lim.expiry(t0, t0 + timedelta(seconds=10), busy=False)
    assert (e.at, e.reason) == (t0 + timedelta(seconds=70), "idle")
    busy = lim.expiry(t0, t0, busy=True)  # busy kernels are not culled as idle...
    assert busy.reason == "lifetime" and busy.at == t0 + timedelta(seconds=600)
    lim.cull_busy = True  # ...unless configured so
    assert lim.expiry(t0, t0, busy=True).reason == "idle"
    late = lim.expiry(t0, t0 + timedelta(seconds=580), busy=False)
    assert late.reason == "lifetime"
    n = notice("cull_warning", e, t0 + timedelta(seconds=40))
    assert n["kind"] == "cull_warning" and n["seconds_left"] == 30 and "idle" in n["message"]
    lim.max_kernels = 2
    lim.admit(1)
    with pytest.raises(Refused) as r:
        lim.admit(2)
    assert r.value.reason == "max_kernels"


def test_missing_nvml_means_no_devices(monkeypatch):
    monkeypatch.delenv("FAKE_NVML_STATE", raising=False)
    for module in ("tests.doubles.fake_nvml", "no_such_nvml_module"):
        cfg = Config({"NvidiaBackend": {"nvml_module": module}})
        assert NvidiaBackend(config=cfg).devices() == []
        assert DeviceSelector(config=cfg).select().accelerator == "none"


def test_backends_not_imported_at_module_import():
    code = (
        "import sys, accel_gateway.app, accel_gateway.extension, accel_gateway.metrics; "
        "assert not {'pynvml', 'tpu_info', 'libtpu'} & set(sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_tpu_backend_through_tpu_info_double(monkeypatch):
    from accel_gateway.devices.tpu import TpuBackend

    cfg = Config(
        {
            "TpuBackend": {"tpu_info_module": "tests.doubles.fake_tpu_info"},
            "DeviceSelector": {"backend": "auto"},
            "NvidiaBackend": {"nvml_module": "no_such_nvml_module"},
        }
    )
    monkeypatch.setenv("FAKE_TPU_CHIPS", "4")
    monkeypatch.setenv("FAKE_TPU_HBM_USED", str(3 * 2**30))
    tpu = DeviceSelector(config=cfg).select()
    assert isinstance(tpu, TpuBackend) and tpu.accelerator == "tpu"
    assert [(d.index, d.name, d.memory_total) for d in tpu.devices()][:2] == [
        (0, "TPU v5e", 16 * 2**30),
        (1, "TPU v5e", 16 * 2**30),
    ]
    s = tpu.sample()
    assert len(s) == 4 and s[3].memory_used == 3 * 2**30 and s[3].utilization == 50.0
    assert tpu.visibility_env([2, 3]) == {
        "TPU_VISIBLE_CHIPS": "2,3",
        "TPU_PROCESS_BOUNDS": "1,1,1",
        "TPU_CHIPS_PER_PROCESS_BOUNDS": "1,2,1",
    }
    monkeypatch.setenv("FAKE_TPU_CHIPS", "0")
    assert TpuBackend(config=cfg).devices() == []
