"""Accelerator devices behind one small interface. Backends are imported only when selected.

A backend answers three questions: which devices this host has, how they are doing now, and
how much device memory each process holds. A missing library or driver means "no devices".
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass

from traitlets import Enum
from traitlets.config import LoggingConfigurable


@dataclass
class Device:
    index: int
    kind: str  # "gpu" | "tpu"
    name: str
    uuid: str
    memory_total: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DeviceSample:
    index: int
    name: str
    memory_used: int
    memory_total: int
    utilization: float | None  # percent
    temperature: float | None  # degrees Celsius

    def to_dict(self) -> dict:
        return asdict(self)


class DeviceBackend(LoggingConfigurable):
    """No accelerators: the base every backend extends."""

    accelerator = "none"  # what /api/accel/runtime reports: none | gpu | tpu

    def devices(self) -> list[Device]:
        return []

    def sample(self) -> list[DeviceSample]:
        return []

    def processes(self) -> dict[int, dict[int, int]]:
        """Device memory per process: {pid: {device index: bytes}}."""
        return {}

    def visibility_env(self, indices: list[int]) -> dict[str, str]:
        """Environment that limits a kernel process to these devices."""
        return {}


_BACKENDS = {
    "nvidia": "accel_gateway.devices.nvidia:NvidiaBackend",
    "tpu": "accel_gateway.devices.tpu:TpuBackend",
}


class DeviceSelector(LoggingConfigurable):
    """Chooses this host's device backend once, at gateway start."""

    backend = Enum(
        ["auto", "nvidia", "tpu", "none"],
        default_value="auto",
        config=True,
        help="Device backend: nvidia (NVML), tpu (tpu-info/libtpu), none, or auto: the first "
        "of nvidia, tpu that finds devices.",
    )

    def select(self) -> DeviceBackend:
        names = ["nvidia", "tpu"] if self.backend == "auto" else [self.backend]
        for name in names:
            if name == "none":
                break
            backend = _load(name)(parent=self)
            if backend.devices() or self.backend != "auto":
                return backend
        return DeviceBackend(parent=self)


def _load(name: str) -> type[DeviceBackend]:
    module, _, cls = _BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)
