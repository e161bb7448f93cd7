"""Stock `jupyter server --gateway-url` runs cells through our gateway; its KERNEL_* env reaches
the kernel (here: a device request of 0 on a host with two fake GPUs)."""

from tests.gateway.conftest import NVML_DOUBLE
from tests.support.kernel_ws import KernelClient
from tests.support.procs import start_server


def test_stock_server_gateway_mode(gateway_factory, fake_gpus, tmp_path):
    _, _, env = fake_gpus
    gw = gateway_factory(NVML_DOUBLE, env=env)
    server = start_server(
        tmp_path / "server",
        f"--gateway-url={gw.url}",
        env={
            "JUPYTER_GATEWAY_AUTH_TOKEN": gw.token,
            "KERNEL_ACCEL_DEVICES": "0",
            # stock: none of this machine's server extensions or config
            "JUPYTER_NO_CONFIG": "1",
        },
    )
    try:
        assert gw.token not in " ".join(server.proc.args)
        r = server.api("POST", "/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        assert kid in {k["id"] for k in gw.api("GET", "/api/kernels").json()}
        with KernelClient(server.url, kid, server.token) as kc:
            assert kc.eval("sum(range(10))") == "45"
            assert kc.eval("__import__('os').environ['CUDA_VISIBLE_DEVICES']") == "''"
        [k] = gw.api("GET", "/api/accel/kernels").json()
        assert k["id"] == kid and k["devices"] == []
        assert server.api("DELETE", f"/api/kernels/{kid}").status_code == 204
        assert gw.api("GET", "/api/kernels").json() == []
    finally:
        server.stop()
