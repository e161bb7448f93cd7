"""NVIDIA GPUs through NVML (nvidia-ml-py, module `pynvml`), imported on first use."""

from __future__ import annotations

import importlib

from traitlets import Unicode

from . import Device, DeviceBackend, DeviceSample


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvidiaBackend(DeviceBackend):
    """GPUs as NVML numbers them; kernels see theirs through CUDA_VISIBLE_DEVICES."""

    accelerator = "gpu"

    nvml_module = Unicode(
        "pynvml",
        config=True,
        help="Python module providing the NVML API (nvidia-ml-py's `pynvml`). Tests point this "
        "at a test double.",
    )

    _nvml = None
    _failed = False
    _devices: list[Device] | None = None

    def _lib(self):
        """The initialised NVML module, or None when there is no library or driver."""
        if self._nvml is None and not self._failed:
            try:
                nvml = importlib.import_module(self.nvml_module)
                nvml.nvmlInit()
                self._nvml = nvml
            except Exception as e:  # ImportError, NVMLError (no driver), anything else
                self._failed = True
                self.log.info("No NVIDIA GPUs (%s: %s)", self.nvml_module, e)
        return self._nvml

    def _handles(self, nvml):
        return [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]

    def devices(self) -> list[Device]:
        if self._devices is None:
            nvml = self._lib()
            found = []
            if nvml is not None:
                try:
                    for i, h in enumerate(self._handles(nvml)):
                        found.append(
                            Device(
                                index=i,
                                kind="gpu",
                                name=_text(nvml.nvmlDeviceGetName(h)),
                                uuid=_text(nvml.nvmlDeviceGetUUID(h)),
                                memory_total=int(nvml.nvmlDeviceGetMemoryInfo(h).total),
                            )
                        )
                except Exception as e:
                    self.log.warning("NVML could not list devices: %s", e)
                    found = []
            self._devices = found  # the set of GPUs does not change while the host runs
        return self._devices

    def sample(self) -> list[DeviceSample]:
        nvml = self._lib()
        if nvml is None:
            return []
        out = []
        for dev in self.devices():
            try:
                h = nvml.nvmlDeviceGetHandleByIndex(dev.index)
                mem = nvml.nvmlDeviceGetMemoryInfo(h)
                out.append(
                    DeviceSample(
                        index=dev.index,
                        name=dev.name,
                        memory_used=int(mem.used),
                        memory_total=int(mem.total),
                        utilization=self._optional(
                            lambda: nvml.nvmlDeviceGetUtilizationRates(h).gpu
                        ),
                        temperature=self._optional(
                            lambda: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)
                        ),
                    )
                )
            except Exception as e:
                self.log.warning("NVML sample of GPU %d failed: %s", dev.index, e)
        return out

    def processes(self) -> dict[int, dict[int, int]]:
        nvml = self._lib()
        if nvml is None:
            return {}
        usage: dict[int, dict[int, int]] = {}
        for dev in self.devices():
            try:
                h = nvml.nvmlDeviceGetHandleByIndex(dev.index)
                procs = nvml.nvmlDeviceGetComputeRunningProcesses(h)
            except Exception as e:
                self.log.debug("NVML processes of GPU %d: %s", dev.index, e)
                continue
            for p in procs:
                used = getattr(p, "usedGpuMemory", None) or 0  # None where the driver hides it
                per_dev = usage.setdefault(int(p.pid), {})
                per_dev[dev.index] = per_dev.get(dev.index, 0) + int(used)
        return usage

    def visibility_env(self, indices: list[int]) -> dict[str, str]:
        # PCI bus order makes CUDA's numbering match NVML's (CUDA defaults to fastest first).
        return {
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
            "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in indices),
        }

    @staticmethod
    def _optional(read):
        try:
            return float(read())
        except Exception:
            return None
