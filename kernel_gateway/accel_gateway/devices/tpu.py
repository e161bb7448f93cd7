"""Cloud TPU chips through tpu-info (or libtpu's presence), imported on first use.

Not run on TPU hardware. Per-process TPU memory is not exposed by libtpu, so processes() is
empty and kernels' TPU memory reads 0.
"""

from __future__ import annotations

import glob
import importlib

from traitlets import Unicode

from . import Device, DeviceBackend, DeviceSample

# TPU_CHIPS_PER_PROCESS_BOUNDS for a kernel owning n chips of one host.
_BOUNDS = {1: "1,1,1", 2: "1,2,1", 4: "2,2,1", 8: "2,4,1"}


class TpuBackend(DeviceBackend):
    accelerator = "tpu"

    tpu_info_module = Unicode(
        "tpu_info",
        config=True,
        help="Python package providing tpu-info's `device` and `metrics` modules. Tests point "
        "this at a test double.",
    )

    _devices: list[Device] | None = None
    _chip_type = None

    def devices(self) -> list[Device]:
        if self._devices is None:
            self._devices = self._discover()
        return self._devices

    def _discover(self) -> list[Device]:
        try:
            tpu_device = importlib.import_module(f"{self.tpu_info_module}.device")
            chip_type, count = tpu_device.get_local_chips()
            if chip_type is None or not count:
                return []
            self._chip_type = chip_type
            info = getattr(chip_type, "value", None)  # TpuChip.Info(name, hbm_gib, ...)
            name = f"TPU {getattr(info, 'name', chip_type)}"
            hbm = int(getattr(info, "hbm_gib", 0) or 0) * 2**30
            return [Device(i, "tpu", name, f"tpu-{i}", hbm) for i in range(count)]
        except Exception as e:
            self.log.debug("tpu-info unavailable: %s", e)
        try:
            importlib.import_module("libtpu")
        except Exception:
            return []
        chips = sorted(glob.glob("/dev/accel*")) or sorted(glob.glob("/dev/vfio/[0-9]*"))
        return [Device(i, "tpu", "TPU", f"tpu-{i}", 0) for i in range(len(chips))]

    def sample(self) -> list[DeviceSample]:
        devices = self.devices()
        usage = {}
        if self._chip_type is not None:
            try:
                metrics = importlib.import_module(f"{self.tpu_info_module}.metrics")
                usage = {u.device_id: u for u in metrics.get_chip_usage(self._chip_type)}
            except Exception as e:  # metrics exist only while a TPU program runs
                self.log.debug("tpu-info metrics: %s", e)
        out = []
        for d in devices:
            u = usage.get(d.index)
            out.append(
                DeviceSample(
                    index=d.index,
                    name=d.name,
                    memory_used=int(getattr(u, "memory_usage", 0) or 0),
                    memory_total=int(getattr(u, "total_memory", 0) or d.memory_total),
                    utilization=getattr(u, "duty_cycle_pct", None),
                    temperature=None,
                )
            )
        return out

    def visibility_env(self, indices: list[int]) -> dict[str, str]:
        if not indices:
            return {"TPU_VISIBLE_CHIPS": "", "JAX_PLATFORMS": "cpu"}
        env = {
            "TPU_VISIBLE_CHIPS": ",".join(str(i) for i in indices),
            "TPU_PROCESS_BOUNDS": "1,1,1",
        }
        if len(indices) in _BOUNDS:
            env["TPU_CHIPS_PER_PROCESS_BOUNDS"] = _BOUNDS[len(indices)]
        return env
