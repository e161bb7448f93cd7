"""Change-runtime time: PATCH /api/sessions/{id} to a kernel elsewhere -> first result there.

jupyterlab-accel: runtime "a" -> runtime "b" (two of our gateways behind one server).
Stock jupyter_server: the same PATCH between two local kernelspecs (`python3` -> `python3-b`), the
closest thing stock Jupyter has. The clock runs from the PATCH request to the `1+1` reply on the
new kernel over a fresh websocket (what JupyterLab does after "Change kernel"), and the new
kernel is checked to live where it should.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

from tests.support.kernel_ws import KernelClient
from tests.support.procs import Proc


def write_second_kernelspec(data_dir: Path) -> None:
    """A local `python3-b` kernelspec (same interpreter) under data_dir/kernels."""
    spec = data_dir / "kernels" / "python3-b"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (b)",
                "language": "python",
            }
        )
    )


class ChangeTarget:
    """One server and the two kernel names to switch between; `where(kernel_id)` -> 'a'/'b'/None."""

    def __init__(self, name: str, server: Proc, kernel_a: str, kernel_b: str, where=None):
        self.name, self.server, self.kernel_a, self.kernel_b = name, server, kernel_a, kernel_b
        self.where = where
        self.samples: dict = {"total": [], "patch": [], "ok": 0, "runs": 0}

    def measure(self) -> None:
        s = self.server
        r = s.api(
            "POST",
            "/api/sessions",
            json={
                "path": f"bench-{uuid.uuid4().hex[:8]}.ipynb",
                "type": "notebook",
                "name": "",
                "kernel": {"name": self.kernel_a},
            },
            timeout=120,
        )
        r.raise_for_status()
        sess = r.json()
        old_kernel = sess["kernel"]["id"]
        self.samples["runs"] += 1
        try:
            with KernelClient(s.url, old_kernel, s.token, timeout=120, protocol="auto") as kc:
                kc.execute("1")  # the notebook is in use on runtime a
            t0 = time.perf_counter()
            r = s.api(
                "PATCH",
                f"/api/sessions/{sess['id']}",
                json={"kernel": {"name": self.kernel_b}},
                timeout=120,
            )
            r.raise_for_status()
            t_patch = time.perf_counter() - t0
            new_kernel = r.json()["kernel"]["id"]
            with KernelClient(s.url, new_kernel, s.token, timeout=120, protocol="auto") as kc:
                value = kc.eval("1+1")
            total = time.perf_counter() - t0
            ok = value == "2" and new_kernel != old_kernel
            if ok and self.where is not None:
                ok = self.where(new_kernel) == "b"
            if ok:
                self.samples["ok"] += 1
                self.samples["total"].append(total)
                self.samples["patch"].append(t_patch)
        except Exception as e:  # a failed switch is counted, not fatal to the run
            print(f"  {self.name}: change runtime failed: {type(e).__name__}: {e}", file=sys.stderr)
        finally:
            s.api("DELETE", f"/api/sessions/{sess['id']}", timeout=60)


def gateway_has_kernel(gw: Proc, kernel_id: str) -> bool:
    return gw.api("GET", f"/api/kernels/{kernel_id}", timeout=10).status_code == 200
