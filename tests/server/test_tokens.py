"""Runtime tokens never reach a browser-facing answer, the server log or a command line.
(Runs after the other env3 tests, so the log covers everything they did.)"""

import psutil
import pytest

from tests.server.conftest import start_session

pytestmark = pytest.mark.timeout(180)


def test_tokens_never_exposed(env3):
    server = env3["server"]
    tokens = [env3[n].token for n in ("a", "b", "stock", "legacy")]
    r = server.api(
        "POST",
        "/accel/runtimes",
        json={"name": "tok", "url": env3["b"].url, "token": env3["b"].token},
    )
    assert r.status_code == 201
    s = start_session(server, "accel--a--python3", "tok.ipynb")
    bodies = [r.text]
    for path in (
        "/accel/runtimes",
        "/accel/runtimes/a",
        "/accel/runtimes/tok",
        "/accel/sessions",
        "/accel/runtimes/a/metrics",
        "/api/kernelspecs",
        "/api/sessions",
        "/api/kernels",
        "/accel/runtimes/a/contents/",
        "/accel/runtimes/stock/metrics",
    ):
        bodies.append(server.api("GET", path).text)
    bodies.append(server.api("DELETE", "/accel/runtimes/tok").text)
    server.api("DELETE", f"/api/sessions/{s['id']}")
    log = server.logtext()
    cmdlines = [
        " ".join(p.cmdline())
        for p in [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
    ]
    for token in tokens:
        for body in bodies:
            assert token not in body
        assert token not in log
        for cmd in cmdlines:
            assert token not in cmd
    assert "jupyterlab_accel" in log  # the log is the right one
