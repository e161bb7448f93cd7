"""Allocation and metrics against two fake GPUs (NVML test double: no GPU on test machines)."""

import json
import threading
import time

import websocket

from tests.doubles.fake_nvml import write_state
from tests.gateway.conftest import GIB, NVML_DOUBLE
from tests.support.kernel_ws import KernelClient

CUDA = "__import__('os').environ['CUDA_VISIBLE_DEVICES']"


def _start(gw, env=None):
    return gw.api("POST", "/api/kernels", json={"name": "python3", **({"env": env} if env else {})})


def test_exclusive_allocation_and_kernel_gpu_memory(gateway_factory, fake_gpus):
    state, devices, env = fake_gpus
    gw = gateway_factory(NVML_DOUBLE, "--MetricsSampler.interval=0.2", env=env)
    info = gw.api("GET", "/api/accel/runtime").json()
    assert info["accelerator"] == "gpu"
    assert [(d["index"], d["name"], d["uuid"], d["memory_total"]) for d in info["devices"]] == [
        (0, "Fake GPU A", "GPU-fake-a", 16 * GIB),
        (1, "Fake GPU B", "GPU-fake-b", 16 * GIB),
    ]
    assert info["limits"]["allocation_policy"] == "exclusive"
    assert info["limits"]["devices_per_kernel"] == 1

    k1, k2 = _start(gw).json()["id"], _start(gw).json()["id"]
    with KernelClient(gw.url, k1, gw.token) as c1, KernelClient(gw.url, k2, gw.token) as c2:
        seen = {c1.eval(CUDA), c2.eval(CUDA)}
        assert seen == {"'0'", "'1'"}
        r = _start(gw)
        assert r.status_code == 503, r.text
        assert r.json()["reason"] == "no_free_device" and "No free device" in r.json()["message"]

        # Per-kernel GPU memory: NVML reports the kernel and a child process it started.
        pid1 = int(c1.eval("__import__('os').getpid()"))
        child = int(c1.eval("import subprocess; p = subprocess.Popen(['sleep', '60']); p.pid"))
        dev1 = int(c1.eval(CUDA).strip("'"))
        write_state(
            state,
            devices,
            {pid1: {dev1: 3 * GIB}, child: {dev1: 1 * GIB}, 999999: {1 - dev1: 5 * GIB}},
        )
        time.sleep(0.3)  # older than the sampler's interval
        m = gw.api("GET", "/api/accel/metrics").json()
        by_id = {k["id"]: k for k in m["kernels"]}
        assert by_id[k1]["gpu_memory"] == 4 * GIB and by_id[k1]["devices"] == [dev1]
        assert by_id[k2]["gpu_memory"] == 0
        assert by_id[k1]["rss"] > 10 * 2**20
        assert [d["memory_used"] for d in m["devices"]] == [1 * GIB, 2 * GIB]
        assert m["devices"][0]["utilization"] == 17 and m["devices"][0]["temperature"] == 45
        assert m["host"]["memory_total"] > 0 and m["host"]["disk_total"] > 0
        c1.execute("p.kill()")

    listed = {k["id"]: k["devices"] for k in gw.api("GET", "/api/accel/kernels").json()}
    assert sorted(listed[k1] + listed[k2]) == [0, 1]
    assert gw.api("DELETE", f"/api/kernels/{k1}").status_code == 204
    k3 = _start(gw)
    assert k3.status_code == 201, k3.text
    with KernelClient(gw.url, k3.json()["id"], gw.token) as c3:
        assert c3.eval(CUDA) == f"'{dev1}'"  # the freed device
    # A kernel asking for no device starts even when all are taken, and sees none.
    k4 = _start(gw, {"KERNEL_ACCEL_DEVICES": "0"})
    assert k4.status_code == 201, k4.text
    with KernelClient(gw.url, k4.json()["id"], gw.token) as c4:
        assert c4.eval(CUDA) == "''"


def test_shared_policy_and_counts(gateway_factory, fake_gpus):
    _, _, env = fake_gpus
    gw = gateway_factory(NVML_DOUBLE, "--DeviceAllocator.policy=shared", env=env)
    both = _start(gw, {"KERNEL_ACCEL_DEVICES": "2"})
    assert both.status_code == 201, both.text
    assert _start(gw, {"KERNEL_ACCEL_DEVICES": "3"}).json()["reason"] == "no_free_device"
    one = _start(gw)
    assert one.status_code == 201
    listed = {k["id"]: k["devices"] for k in gw.api("GET", "/api/accel/kernels").json()}
    assert listed[both.json()["id"]] == [0, 1] and len(listed[one.json()["id"]]) == 1


def _calls(path) -> int:
    try:
        return int(open(path).read() or 0)
    except FileNotFoundError:
        return 0


def test_metrics_stream_one_sampler_for_many_watchers(gateway_factory, fake_gpus):
    _, _, env = fake_gpus
    interval, watchers, seconds = 0.25, 10, 2.0
    gw = gateway_factory(NVML_DOUBLE, f"--MetricsSampler.interval={interval}", env=env)
    counter = env["FAKE_NVML_COUNTER"]
    url = gw.url.replace("http", "ws", 1) + "/api/accel/metrics/stream"
    before = _calls(counter)
    received = [[] for _ in range(watchers)]

    def watch(i):
        ws = websocket.create_connection(
            url, header=[f"Authorization: token {gw.token}"], timeout=10
        )
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            received[i].append(json.loads(ws.recv()))
        ws.close()

    threads = [threading.Thread(target=watch, args=(i,)) for i in range(watchers)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    elapsed = time.monotonic() - t0
    samples = (_calls(counter) - before) / 2  # the double counts one call per device per sample
    for got in received:
        assert len(got) >= seconds / interval / 2, [len(g) for g in received]
        assert {"time", "devices", "host", "kernels"} <= set(got[-1])
        assert got[-1]["devices"][1]["memory_used"] == 2 * GIB
    # One sampler: samples follow the clock, not the number of watchers.
    assert samples <= elapsed / interval + 3, (samples, elapsed)
    # Nobody watching: the sampler stops.
    time.sleep(3 * interval)
    idle_from = _calls(counter)
    time.sleep(4 * interval)
    assert _calls(counter) == idle_from


def test_restart_keeps_and_death_releases_devices(gateway_factory, fake_gpus):
    _, _, env = fake_gpus
    gw = gateway_factory(
        NVML_DOUBLE,
        "--KernelRestarter.restart_limit=0",
        "--KernelRestarter.time_to_dead=0.3",
        env=env,
    )
    kid = _start(gw, {"KERNEL_ACCEL_DEVICES": "2"}).json()["id"]
    assert _start(gw).json()["reason"] == "no_free_device"
    # A restart keeps the kernel's devices.
    assert gw.api("POST", f"/api/kernels/{kid}/restart").status_code == 200
    assert gw.api("GET", "/api/accel/kernels").json()[0]["devices"] == [0, 1]
    with KernelClient(gw.url, kid, gw.token) as kc:
        assert kc.eval(CUDA) == "'0,1'"
        kc.send(
            {
                "header": {
                    "msg_id": "die",
                    "msg_type": "execute_request",
                    "session": kc.session,
                    "username": "t",
                    "date": "",
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "buffers": [],
                "content": {"code": "import os; os._exit(1)", "silent": False},
            }
        )
        deadline = time.monotonic() + 15
        while gw.api("GET", "/api/accel/kernels").json():
            assert time.monotonic() < deadline, "dead kernel still holds its devices"
            time.sleep(0.2)
    r = _start(gw, {"KERNEL_ACCEL_DEVICES": "2"})
    assert r.status_code == 201, r.text
