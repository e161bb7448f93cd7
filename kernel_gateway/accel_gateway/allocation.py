"""Device allocator: which devices each kernel gets, under an exclusive or shared policy.

A request that cannot be met is refused at once (Refused), never queued.
"""

from __future__ import annotations

from collections.abc import Callable

from traitlets import Enum, Integer, validate
from traitlets.config import LoggingConfigurable

from .settings import at_least

REQUEST_ENV = "KERNEL_ACCEL_DEVICES"


class Refused(Exception):
    """A kernel cannot start now; `reason` is a stable machine-readable word."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.message = message
        self.reason = reason


def requested_count(env: dict | None) -> int | None:
    """The device count asked for in a kernel start env, None when not asked; ValueError if bad."""
    raw = (env or {}).get(REQUEST_ENV)
    if raw is None or str(raw).strip() == "":
        return None
    try:
        n = int(str(raw).strip())
    except ValueError:
        raise ValueError(f"{REQUEST_ENV} must be a whole number of devices, got {raw!r}") from None
    if n < 0:
        raise ValueError(f"{REQUEST_ENV} must not be negative, got {n}")
    return n


class DeviceAllocator(LoggingConfigurable):
    """Hands out device indices to kernels and takes them back."""

    policy = Enum(
        ["exclusive", "shared"],
        default_value="exclusive",
        config=True,
        help="exclusive: a device belongs to one kernel at a time. shared: kernels share "
        "devices, each kernel getting the least-used ones.",
    )
    devices_per_kernel = Integer(
        None,
        allow_none=True,
        config=True,
        help="Devices a kernel gets unless its start env asks otherwise (KERNEL_ACCEL_DEVICES). "
        "Default: 1 on hosts with devices, 0 on hosts without.",
    )

    @validate("devices_per_kernel")
    def _check_devices_per_kernel(self, proposal):
        if proposal["value"] is None:
            return None
        return at_least(self, proposal, 0, "devices")

    def __init__(
        self,
        device_indices: list[int],
        visibility_env: Callable[[list[int]], dict[str, str]] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.device_indices = list(device_indices)
        self._visibility_env: Callable[[list[int]], dict[str, str]] = visibility_env or (
            lambda indices: {}
        )
        self._assigned: dict[str, list[int]] = {}

    @property
    def default_count(self) -> int:
        if self.devices_per_kernel is not None:
            return self.devices_per_kernel
        return 1 if self.device_indices else 0

    def allocate(self, kernel_id: str, requested: int | None = None) -> list[int]:
        """Reserve devices for a kernel; raises Refused when the request cannot be met now."""
        n = self.default_count if requested is None else requested
        if n == 0:
            self._assigned[kernel_id] = []
            return []
        total = len(self.device_indices)
        if n > total:
            raise Refused(
                f"This runtime has {total} device(s); {n} were requested.", "no_free_device"
            )
        if self.policy == "exclusive":
            taken = {i for devs in self._assigned.values() for i in devs}
            free = [i for i in self.device_indices if i not in taken]
            if len(free) < n:
                raise Refused(
                    f"No free device: {n} requested, {len(free)} of {total} free (each device "
                    "serves one kernel at a time). Shut down another kernel, or start this one "
                    f"with {REQUEST_ENV}=0.",
                    "no_free_device",
                )
            chosen = free[:n]
        else:
            load = {i: 0 for i in self.device_indices}
            for devs in self._assigned.values():
                for i in devs:
                    load[i] += 1
            chosen = sorted(sorted(self.device_indices, key=lambda i: load[i])[:n])
        self._assigned[kernel_id] = chosen
        self.log.info("Kernel %s gets devices %s (%s)", kernel_id, chosen, self.policy)
        return chosen

    def env_for(self, indices: list[int]) -> dict[str, str]:
        """Environment variables that show a kernel only its devices."""
        return self._visibility_env(indices)

    def release(self, kernel_id: str) -> None:
        devs = self._assigned.pop(kernel_id, None)
        if devs:
            self.log.info("Kernel %s released devices %s", kernel_id, devs)

    def assigned(self, kernel_id: str) -> list[int]:
        return list(self._assigned.get(kernel_id, []))
