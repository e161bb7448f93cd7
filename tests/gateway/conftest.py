import pytest

from tests.doubles.fake_nvml import write_state

GIB = 2**30


@pytest.fixture
def fake_gpus(tmp_path):
    """Two fake GPUs behind the NVML test double; returns (state path, env for the gateway)."""
    state = tmp_path / "nvml-state.json"
    devices = [
        {
            "name": "Fake GPU A",
            "uuid": "GPU-fake-a",
            "memory_total": 16 * GIB,
            "memory_used": 1 * GIB,
            "utilization": 17,
            "temperature": 45,
        },
        {
            "name": "Fake GPU B",
            "uuid": "GPU-fake-b",
            "memory_total": 16 * GIB,
            "memory_used": 2 * GIB,
            "utilization": 0,
            "temperature": 38,
        },
    ]
    write_state(state, devices)
    env = {"FAKE_NVML_STATE": str(state), "FAKE_NVML_COUNTER": str(tmp_path / "nvml-calls")}
    return state, devices, env


NVML_DOUBLE = "--NvidiaBackend.nvml_module=tests.doubles.fake_nvml"
