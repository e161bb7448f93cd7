"""The gateway starts, serves kernels over the standard API, and enforces its token."""

from tests.support.kernel_ws import KernelClient


def test_kernel_runs_cell(gateway):
    r = gateway.api("POST", "/api/kernels", json={"name": "python3"})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    with KernelClient(gateway.url, kid, gateway.token) as kc:
        assert kc.eval("6*7") == "42"
    assert gateway.api("DELETE", f"/api/kernels/{kid}").status_code == 204


def test_token_required(gateway):
    import requests

    assert requests.get(gateway.url + "/api/kernels", timeout=10).status_code in (401, 403)
    bad = {"Authorization": "token nope"}
    assert requests.get(gateway.url + "/api/kernels", headers=bad, timeout=10).status_code in (
        401,
        403,
    )


def test_v1_protocol(gateway):
    kid = gateway.api("POST", "/api/kernels", json={"name": "python3"}).json()["id"]
    with KernelClient(gateway.url, kid, gateway.token, protocol="v1") as kc:
        assert kc.eval("'ab' * 2") == "'abab'"


def test_kernel_starts_in_the_workspace(gateway):
    """A kernel started without a path runs in the workspace root (Colab: /content)."""
    (gateway.root / "sub").mkdir()
    for body, expected in (
        ({"name": "python3"}, gateway.root),
        ({"name": "python3", "path": "sub/nb.ipynb"}, gateway.root / "sub"),
    ):
        kid = gateway.api("POST", "/api/kernels", json=body).json()["id"]
        with KernelClient(gateway.url, kid, gateway.token) as kc:
            assert kc.eval("__import__('os').getcwd()") == repr(str(expected))
