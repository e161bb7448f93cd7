"""Misbehaving runtimes (tests/faults/bad_runtime.py) as real processes on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.procs import _env, free_port, launch


def start_bad_runtime(
    workdir: Path, mode: str, record: Path | None = None, slow_flag: Path | None = None
):
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [sys.executable, "-m", "tests.faults.bad_runtime", f"--port={port}", f"--mode={mode}"]
    if record is not None:
        cmd.append(f"--record={record}")
    if slow_flag is not None:
        cmd.append(f"--slow-flag={slow_flag}")
    url = f"http://127.0.0.1:{port}"
    log = workdir / f"bad-{mode}-{port}.log"
    return launch("bad runtime", cmd, _env("t", {}), workdir, log, url, "t", workdir, port, "/", 30)
