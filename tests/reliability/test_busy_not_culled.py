"""Limits: a kernel busy running a silent cell is not culled as idle (KernelLimits.cull_busy
False, the default), while an idle kernel on the same gateway is; with cull_busy it is."""

from __future__ import annotations

import time

import pytest

from tests.support.kernel_ws import KernelClient

from .output import read_for, send_execute

pytestmark = pytest.mark.timeout(90)
LIMITS = (
    "--KernelLimits.idle_timeout=2",
    "--KernelLimits.cull_warning=1",
    "--KernelLimits.check_interval=0.3",
    "--KernelLimits.max_lifetime=0",
)


def kernel_ids(gw) -> set:
    return {k["id"] for k in gw.api("GET", "/api/accel/kernels").json()}


@pytest.mark.parametrize("cull_busy", [False, True])
def test_busy_kernel_culled_only_when_configured(gateway_factory, cull_busy):
    gw = gateway_factory(*LIMITS, f"--KernelLimits.cull_busy={cull_busy}")
    busy = gw.api("POST", "/api/kernels", json={"name": "python3"}).json()["id"]
    idle = gw.api("POST", "/api/kernels", json={"name": "python3"}).json()["id"]
    with KernelClient(gw.url, busy, gw.token) as c:
        msg_id = send_execute(c, "import time; time.sleep(8)")  # no output for 8 s
        assert read_for(c, msg_id, 15, stop_at="execute_input")
        deadline = time.monotonic() + 6
        while idle in kernel_ids(gw) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert idle not in kernel_ids(gw)  # the idle one went after ~2 s
        time.sleep(2)  # both are well past the idle timeout now
        assert (busy in kernel_ids(gw)) is (not cull_busy)
        if not cull_busy:
            rest = read_for(c, msg_id, 15, until_idle=True)
            assert rest and rest[-1]["content"]["execution_state"] == "idle"
