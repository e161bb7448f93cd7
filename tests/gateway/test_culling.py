"""Limits: notices over the kernel websocket (JSON and v1) before an idle kernel is culled,
keep-alive postpones culling, max_kernels refuses with a reason."""

import threading
import time
from datetime import datetime

from tests.support.kernel_ws import KernelClient

IDLE, WARN = 4.0, 3.0


def _notices(kc, until: str, timeout: float) -> list[tuple[float, dict]]:
    """accel_notice messages (arrival time, content) until one of kind `until`."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = kc.recv()
        if m["header"]["msg_type"] == "accel_notice":
            assert m["channel"] == "iopub"
            got.append((time.monotonic(), m["content"]))
            if m["content"]["kind"] == until:
                return got
    raise AssertionError(f"no {until} notice within {timeout}s: {got}")


def test_idle_cull_warns_first_and_keepalive_postpones(gateway_factory):
    gw = gateway_factory(
        f"--KernelLimits.idle_timeout={IDLE}",
        f"--KernelLimits.cull_warning={WARN}",
        "--KernelLimits.check_interval=0.2",
        "--KernelLimits.max_lifetime=0",
        "--KernelLimits.max_kernels=2",
    )
    doomed = gw.api("POST", "/api/kernels", json={"name": "python3"}).json()["id"]
    kept = gw.api("POST", "/api/kernels", json={"name": "python3"}).json()["id"]
    r = gw.api("POST", "/api/kernels", json={"name": "python3"})
    assert r.status_code == 503 and r.json()["reason"] == "max_kernels", r.text

    stop, statuses = threading.Event(), []

    def keep_alive():
        while not stop.wait(1.0):
            statuses.append(gw.api("POST", f"/api/accel/kernels/{kept}/keepalive").status_code)

    keeper = threading.Thread(target=keep_alive)
    keeper.start()
    try:
        with (
            KernelClient(gw.url, doomed, gw.token) as js,
            KernelClient(gw.url, doomed, gw.token, protocol="v1") as v1,
        ):
            assert js.eval("1+1") == "2"
            listed = {k["id"]: k for k in gw.api("GET", "/api/accel/kernels").json()}
            assert listed[doomed]["expiry_reason"] == "idle"
            expires = datetime.fromisoformat(listed[doomed]["expires_at"])
            assert 0 < (expires - datetime.now(expires.tzinfo)).total_seconds() <= IDLE + 1

            notices = _notices(js, "culled", IDLE + 10)
            kinds = [c["kind"] for _, c in notices]
            assert kinds[0] == "cull_warning" and kinds[-1] == "culled", kinds
            (t_warn, warn), (t_cull, culled) = notices[0], notices[-1]
            assert warn["reason"] == "idle" and 0 < warn["seconds_left"] <= WARN
            assert "idle" in warn["message"] and warn["expires_at"]
            assert t_cull - t_warn >= 1.5  # the warning came well before the cull
            assert culled["reason"] == "idle" and culled["seconds_left"] == 0
            # The v1 (binary) connection got the same notices in its own framing.
            assert [c["kind"] for _, c in _notices(v1, "culled", 5)][-1] == "culled"

        deadline = time.monotonic() + 10
        while doomed in {k["id"] for k in gw.api("GET", "/api/kernels").json()}:
            assert time.monotonic() < deadline, "culled kernel still listed"
            time.sleep(0.2)
        # kept: started together with doomed, idle as long, alive thanks to keep-alive.
        assert gw.api("GET", f"/api/kernels/{kept}").status_code == 200
        assert len(statuses) >= 4 and set(statuses) == {200}
        # Its slot is free again: max_kernels counts the culled kernel out.
        assert gw.api("POST", "/api/kernels", json={"name": "python3"}).status_code == 201
    finally:
        stop.set()
        keeper.join()
