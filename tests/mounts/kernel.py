"""Run code in a real kernel of a gateway."""
from __future__ import annotations

import contextlib

from tests.support.kernel_ws import KernelClient


@contextlib.contextmanager
def kernel(gw):
    r = gw.api("POST", "/api/kernels", json={"name": "python3"})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    try:
        with KernelClient(gw.url, kid, gw.token, timeout=120) as kc:
            yield Runner(kc)
    finally:
        gw.api("DELETE", f"/api/kernels/{kid}")


class Runner:
    def __init__(self, kc):
        self.kc = kc

    def run(self, code: str, timeout: float = 120) -> str:
        """Execute; raise with the traceback on error; return stdout."""
        r = self.kc.execute(code, timeout=timeout)
        if r["reply"]["status"] != "ok":
            c = r["reply"]
            raise AssertionError(f"{c.get('ename')}: {c.get('evalue')}\n" +
                                 "\n".join(c.get("traceback", []))[-3000:] + r["stderr"])
        return r["stdout"]

    def error(self, code: str) -> tuple[str, str]:
        r = self.kc.execute(code, timeout=120)
        assert r["reply"]["status"] == "error", r
        return r["reply"]["ename"], r["reply"]["evalue"]
