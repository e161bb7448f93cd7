"""`jupyter accel bench-runtimes` against a real jupyter_server + jupyterlab_accel and two of our
gateways: a CPU runtime and one that reports a GPU (NVML test double: no GPU here, so the kernel
trains on the numpy fallback on both). Tiny sizes: seconds, not minutes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from jupyterlab_accel import bench_cnn
from tests.doubles.fake_nvml import write_state
from tests.server.conftest import server_with
from tests.support.procs import REPO, start_gateway

TINY = ["--samples", "192", "--epochs", "1", "--batch", "64", "--repeat", "1", "--backend", "numpy"]


@pytest.fixture(scope="module")
def two_runtimes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    state = tmp / "nvml.json"
    write_state(
        state,
        [
            {
                "name": "Fake GPU A",
                "uuid": "GPU-fake-a",
                "memory_total": 2**34,
                "memory_used": 0,
                "utilization": 0,
                "temperature": 40,
            }
        ],
    )
    procs = []
    try:
        cpu = start_gateway(tmp / "cpu")
        procs.append(cpu)
        gpu = start_gateway(
            tmp / "gpu",
            "--NvidiaBackend.nvml_module=tests.doubles.fake_nvml",
            env={"FAKE_NVML_STATE": str(state)},
        )
        procs.append(gpu)
        server = server_with(
            tmp / "server",
            [
                {"name": "cpu-box", "url": cpu.url, "token": cpu.token},
                {"name": "gpu-box", "url": gpu.url, "token": gpu.token, "price_per_hour": 7.2},
            ],
        )
        procs.append(server)
        yield server
    finally:
        for p in reversed(procs):
            p.stop()


def _run(args, env_extra):
    env = {
        **os.environ,
        **env_extra,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "jupyterlab_accel.bench_runtimes", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        cwd=REPO,
    )


def test_table_on_every_runtime_and_direct(two_runtimes, tmp_path):
    server = two_runtimes
    out_json = tmp_path / "rows.json"
    p = _run(
        ["--url", server.url, "--direct", "--json", str(out_json), *TINY],
        {"JUPYTER_TOKEN": server.token},
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert server.token not in p.stdout + p.stderr
    table = [line for line in p.stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| runtime | accelerator |")
    by_name = {line.split(" | ")[0][2:]: line for line in table[1:]}
    assert set(by_name) == {"cpu-box", "gpu-box", "(this host, no kernel)"}
    assert "| 1.00x |" in by_name["cpu-box"]  # the CPU runtime is the base
    assert "GPU" in by_name["gpu-box"].split(" | ")[1]
    data = json.loads(out_json.read_text())
    rows = {r["runtime"]: r for r in data["runtimes"]}
    assert "token" not in data["args"]
    for r in rows.values():
        assert r["backend"].startswith("numpy") and r["device"] == "cpu"
        assert 0 < r["seconds"] <= r["wall"]  # wall includes the transport
        assert r["last_loss"] < r["first_loss"]  # it really trained
    # cost per run = price x wall time, only where a price is configured
    cost = float(by_name["gpu-box"].split(" | ")[6])
    assert cost == pytest.approx(7.2 * rows["gpu-box"]["wall"] / 3600, rel=0.01, abs=1e-6)
    assert by_name["cpu-box"].split(" | ")[6] == "-"
    assert data["direct"]["seconds"] > 0 and by_name["(this host, no kernel)"].endswith("% |")


def test_filter_and_bad_token(two_runtimes):
    server = two_runtimes
    p = _run(["--url", server.url, "--runtimes", "gpu-box", *TINY], {"JUPYTER_TOKEN": server.token})
    assert p.returncode == 0, p.stderr[-2000:]
    assert "gpu-box" in p.stdout and "cpu-box" not in p.stdout
    bad = _run(["--url", server.url, *TINY], {"JUPYTER_TOKEN": "wrong"})
    assert bad.returncode == 2 and "answered 403" in bad.stderr, bad.stderr
    dead = _run(["--url", "http://127.0.0.1:9", *TINY], {"JUPYTER_TOKEN": "x"})
    assert dead.returncode == 2 and "cannot reach" in dead.stderr, dead.stderr


def test_numpy_cnn_learns_and_is_deterministic():
    a = bench_cnn.train(bench_cnn.setup(256, seed=3, backend="numpy"), epochs=3, batch=32)
    b = bench_cnn.train(bench_cnn.setup(256, seed=3, backend="numpy"), epochs=3, batch=32)
    assert a["steps"] == 24 and a["last_loss"] < 0.8 * a["first_loss"]
    assert (a["first_loss"], a["last_loss"]) == (b["first_loss"], b["last_loss"])
