"""docs/openapi.yaml fuzzed with schemathesis against a live gateway and a live server: no 5xx,
no hang (each request at most 10 s), bounded (5 examples per operation and phase, ~40 s)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


def fuzz(url: str, token: str, *filters: str, examples: int = 5) -> None:
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(SPEC),
        "--url",
        url,
        "-H",
        f"Authorization: token {token}",
        *filters,
        "-n",
        str(examples),
        "--phases",
        "examples,coverage,fuzzing",
        "-c",
        "not_a_server_error",
        "--request-timeout",
        "10",
        "--max-response-time",
        "10",
        "--no-shrink",
        "--seed",
        "1",
        "--warnings",
        "off",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert "passed" in out and "Tested:" in out, out[-3000:]
    print(*[line.strip() for line in out.splitlines() if "generated" in line or "Tested:" in line])


def test_spec_is_valid_openapi():
    import yaml

    spec = yaml.safe_load(SPEC.read_text())
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    assert any(p.startswith("/accel/") for p in paths) and any(
        p.startswith("/api/accel/") for p in paths
    )


def test_fuzz_gateway(sec_env):
    gw = sec_env["gw"]
    fuzz(gw.url, gw.token, "--include-path-regex", "^/api/")
    assert gw.proc.poll() is None
    assert gw.api("GET", "/api/accel/runtime").status_code == 200


def test_fuzz_server(sec_env):
    server = sec_env["server"]
    # Everything but adding runtimes first: fuzzed runtimes point nowhere, and their 502/503
    # ("runtime unreachable") are the right answer, so they are added last.
    fuzz(
        server.url,
        server.token,
        "--include-path-regex",
        "^/accel/",
        "--exclude-path",
        "/accel/runtimes",
    )
    fuzz(server.url, server.token, "--include-path", "/accel/runtimes")
    assert server.proc.poll() is None
    r = server.api("GET", "/accel/runtimes/a")
    assert r.status_code == 200 and r.json()["healthy"], r.text
