"""What this machine is: GET /api/accel/runtime."""

from __future__ import annotations

import os

import psutil
from traitlets import Enum, Integer
from traitlets.config import LoggingConfigurable

from ._version import __version__


class RuntimeInfo(LoggingConfigurable):
    shape = Enum(
        ["auto", "standard", "highmem"],
        default_value="auto",
        config=True,
        help="Machine shape shown to users: standard or highmem (High-RAM). auto: highmem when "
        "the host has at least highmem_threshold bytes of RAM.",
    )
    highmem_threshold = Integer(
        32 * 2**30, config=True, help="RAM (bytes) from which shape=auto reports highmem."
    )

    def resolved_shape(self, memory_total: int) -> str:
        if self.shape != "auto":
            return self.shape
        return "highmem" if memory_total >= self.highmem_threshold else "standard"

    def describe(self, backend, allocator, limits, workspace: str, features: list[str]) -> dict:
        mem = psutil.virtual_memory().total
        disk = psutil.disk_usage(workspace)
        devices = backend.devices()
        return {
            "version": __version__,
            "accelerator": backend.accelerator if devices else "none",
            "shape": self.resolved_shape(mem),
            "devices": [d.to_dict() for d in devices],
            "cpu_count": os.cpu_count(),
            "memory_total": mem,
            "disk_total": disk.total,
            "disk_free": disk.free,
            "workspace": workspace,
            "limits": {
                **limits.to_dict(),
                "allocation_policy": allocator.policy,
                "devices_per_kernel": allocator.default_count,
            },
            "features": list(features),
        }
