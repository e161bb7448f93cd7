"""Test double for NVML (nvidia-ml-py's `pynvml`): the functions accel_gateway calls.

No GPU exists on the test machines, so this stands in for the driver. Its state is a JSON file
named by FAKE_NVML_STATE, re-read on every call so a test can change GPU memory live:

    {"devices": [{"name": "Fake GPU", "uuid": "GPU-0", "memory_total": 16e9, "memory_used": 1e9,
                  "utilization": 12, "temperature": 41}],
     "processes": {"<pid>": {"<device index>": bytes}}}

Without FAKE_NVML_STATE (or with an unreadable file) nvmlInit fails as on a host without a
driver. If FAKE_NVML_COUNTER names a file, each nvmlDeviceGetComputeRunningProcesses call adds
one to the number in it, so tests can count samples taken.
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

NVML_TEMPERATURE_GPU = 0


class NVMLError(Exception):
    pass


def write_state(path, devices: list[dict], processes: dict | None = None) -> None:
    """For tests: write the double's state file atomically."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(
            {
                "devices": devices,
                "processes": {
                    str(k): {str(i): int(b) for i, b in v.items()}
                    for k, v in (processes or {}).items()
                },
            },
            f,
        )
    os.replace(tmp, path)


def _state() -> dict:
    path = os.environ.get("FAKE_NVML_STATE")
    if not path:
        raise NVMLError("Driver Not Loaded (FAKE_NVML_STATE unset)")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise NVMLError(f"Driver Not Loaded ({e})")


def _device(handle: int) -> dict:
    devices = _state()["devices"]
    if not 0 <= handle < len(devices):
        raise NVMLError("Invalid Argument")
    return devices[handle]


def nvmlInit():
    _state()


def nvmlShutdown():
    pass


def nvmlDeviceGetCount() -> int:
    return len(_state()["devices"])


def nvmlDeviceGetHandleByIndex(index: int) -> int:
    _device(index)
    return index


def nvmlDeviceGetName(handle) -> str:
    return _device(handle).get("name", "Fake GPU")


def nvmlDeviceGetUUID(handle) -> str:
    return _device(handle).get("uuid", f"GPU-fake-{handle}")


def nvmlDeviceGetMemoryInfo(handle):
    d = _device(handle)
    total, used = int(d["memory_total"]), int(d.get("memory_used", 0))
    return SimpleNamespace(total=total, used=used, free=total - used)


def nvmlDeviceGetUtilizationRates(handle):
    return SimpleNamespace(gpu=_device(handle).get("utilization", 0), memory=0)


def nvmlDeviceGetTemperature(handle, sensor):
    return _device(handle).get("temperature", 40)


def nvmlDeviceGetComputeRunningProcesses(handle):
    state = _state()
    _device(handle)
    _count()
    return [
        SimpleNamespace(pid=int(pid), usedGpuMemory=int(per_dev[str(handle)]))
        for pid, per_dev in state.get("processes", {}).items()
        if str(handle) in per_dev
    ]


def _count() -> None:
    path = os.environ.get("FAKE_NVML_COUNTER")
    if not path:
        return
    try:
        with open(path) as f:
            n = int(f.read() or 0)
    except (OSError, ValueError):
        n = 0
    with open(path, "w") as f:
        f.write(str(n + 1))
