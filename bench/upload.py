"""Upload of a large file as JupyterLab uploads it: the chunked contents protocol.

JupyterLab splits a file over 1 MiB into 1 MiB pieces and PUTs each to /api/contents/{path} as
JSON `{type: "file", format: "base64", content, chunk}` with chunk = 1, 2, ... and -1 for the
last (the server appends). Through jupyterlab-accel the Files panel of a runtime sends the same
PUTs to /accel/runtimes/{name}/contents/{path}. Measured: MB/s of file bytes, and the RSS growth
(peak over the baseline taken just before) of the local server and, when given, the gateway.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time

import psutil
import requests

from tests.support.procs import Proc

CHUNK = 1024 * 1024  # JupyterLab's CHUNK_SIZE


class RssPeak:
    """Peak RSS of some processes, sampled every 20 ms in a thread."""

    def __init__(self, pids: dict[str, int]):
        self.procs = {k: psutil.Process(p) for k, p in pids.items()}
        self.base = {k: p.memory_info().rss for k, p in self.procs.items()}
        self.peak = dict(self.base)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.02):
            for k, p in self.procs.items():
                try:
                    self.peak[k] = max(self.peak[k], p.memory_info().rss)
                except psutil.Error:
                    pass

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._t.join()

    def growth_mb(self) -> dict[str, float]:
        return {k: (self.peak[k] - self.base[k]) / 2**20 for k in self.procs}


def chunked_upload(
    server: Proc, api_path: str, size: int, timeout: float = 120, keep: bool = False
) -> float:
    """PUT `size` bytes in JupyterLab's chunks to server.url + api_path; returns seconds. The
    file's size is checked, then it is deleted unless `keep`."""
    block = os.urandom(CHUNK)
    b64 = base64.b64encode(block).decode()
    name = api_path.rsplit("/", 1)[-1]
    nchunks = max(1, -(-size // CHUNK))
    session = requests.Session()
    session.headers.update(server.headers)
    t0 = time.perf_counter()
    for i in range(1, nchunks + 1):
        last = i == nchunks
        n = size - (nchunks - 1) * CHUNK if last else CHUNK
        content = b64 if n == CHUNK else base64.b64encode(block[:n]).decode()
        body = json.dumps(
            {
                "type": "file",
                "format": "base64",
                "name": name,
                "path": name,
                "content": content,
                "chunk": -1 if last else i,
            }
        )
        r = session.put(
            server.url + api_path,
            data=body,
            timeout=timeout,
            headers={"Content-Type": "application/json"},
        )
        if r.status_code >= 300:
            raise RuntimeError(f"chunk {i}/{nchunks}: HTTP {r.status_code} {r.text[:300]}")
    dt = time.perf_counter() - t0
    r = session.get(server.url + api_path, params={"content": "0"}, timeout=timeout)
    r.raise_for_status()
    if r.json().get("size") != size:
        raise RuntimeError(f"uploaded file has {r.json().get('size')} bytes, expected {size}")
    if not keep:
        session.delete(server.url + api_path, timeout=timeout)
    return dt


class UploadTarget:
    def __init__(self, name: str, server: Proc, api_prefix: str, watch: dict[str, int]):
        self.name, self.server, self.api_prefix, self.watch = name, server, api_prefix, watch
        self.samples: dict = {"MBps": [], "rss_growth_mb": [], "ok": 0, "runs": 0, "errors": []}

    def measure(self, size: int) -> None:
        self.samples["runs"] += 1
        path = f"{self.api_prefix}/bench-upload-{self.samples['runs']}.bin"
        try:
            with RssPeak(self.watch) as rss:
                dt = chunked_upload(self.server, path, size)
            self.samples["ok"] += 1
            self.samples["MBps"].append(size / dt / 1e6)
            self.samples["rss_growth_mb"].append(rss.growth_mb())
        except Exception as e:  # noqa: BLE001 - reported in the table
            self.samples["errors"].append(f"{type(e).__name__}: {e}"[:300])
