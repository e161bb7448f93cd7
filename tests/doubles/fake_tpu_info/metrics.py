"""tpu-info's metrics module, as the gateway uses it (see package docstring)."""

import os
from typing import NamedTuple

from .device import get_local_chips


class Usage(NamedTuple):
    device_id: int
    memory_usage: int
    total_memory: int
    duty_cycle_pct: float


def get_chip_usage(chip_type, addr="localhost:8431"):
    _, count = get_local_chips()
    used = int(os.environ.get("FAKE_TPU_HBM_USED", "0"))
    return [Usage(i, used, chip_type.value.hbm_gib * 2**30, 50.0) for i in range(count)]
