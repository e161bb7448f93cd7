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


# Everyday file operations through a mount, run in a kernel: numpy save/load (mmap too), pandas
# append, write then os.replace, sqlite. `root` is the mount point.
FILE_OPS = r"""
import os, sqlite3, numpy as np, pandas as pd
from accel_gateway import drive
root = {root!r}
a = np.arange(100_000, dtype="float64")
np.save(os.path.join(root, "a.npy"), a)
assert (np.load(os.path.join(root, "a.npy")) == a).all()
assert np.load(os.path.join(root, "a.npy"), mmap_mode="r")[-1] == 99_999
csv = os.path.join(root, "t.csv")
pd.DataFrame({{"x": [1, 2]}}).to_csv(csv, index=False)
pd.DataFrame({{"x": [3]}}).to_csv(csv, mode="a", header=False, index=False)
assert pd.read_csv(csv)["x"].tolist() == [1, 2, 3]
with open(os.path.join(root, "cfg.json.tmp"), "w") as f:
    f.write('{{"v": 2}}')
os.replace(os.path.join(root, "cfg.json.tmp"), os.path.join(root, "cfg.json"))
db = sqlite3.connect(os.path.join(root, "db.sqlite"))
db.execute("create table t (x)")
db.executemany("insert into t values (?)", [(i,) for i in range(1000)])
db.commit()
assert db.execute("select count(*), sum(x) from t").fetchone() == (1000, 499500)
db.close()
"""


class Runner:
    def __init__(self, kc):
        self.kc = kc

    def run(self, code: str, timeout: float = 120) -> str:
        """Execute; raise with the traceback on error; return stdout."""
        r = self.kc.execute(code, timeout=timeout)
        if r["reply"]["status"] != "ok":
            c = r["reply"]
            raise AssertionError(
                f"{c.get('ename')}: {c.get('evalue')}\n"
                + "\n".join(c.get("traceback", []))[-3000:]
                + r["stderr"]
            )
        return r["stdout"]

    def error(self, code: str) -> tuple[str, str]:
        r = self.kc.execute(code, timeout=120)
        assert r["reply"]["status"] == "error", r
        return r["reply"]["ename"], r["reply"]["evalue"]
