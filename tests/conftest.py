import asyncio
import shutil
import signal
import tempfile

import pytest

from tests.support.procs import start_gateway


def _interrupt_on_sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


# A test run stopped with SIGTERM (e.g. `timeout`, CI's limit) still tears its fixtures down,
# so the gateways and servers it started are stopped by PID instead of leaking.
if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)


def pytest_configure(config):
    # Each run gets its own base temp dir: pytest's default keeps the last 3 runs under one
    # shared folder and deletes older ones, which removes the live workspaces of a run going on
    # beside it (two lanes, or two people on one machine).
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="accel-pytest-")
        config._accel_own_basetemp = config.option.basetemp


def pytest_sessionfinish(session, exitstatus):
    own = getattr(session.config, "_accel_own_basetemp", None)
    if own and exitstatus == 0:
        shutil.rmtree(own, ignore_errors=True)  # kept after a failure, for its logs


@pytest.fixture
def gateway_factory(tmp_path):
    """Start real gateways on 127.0.0.1; all are stopped by PID at teardown."""
    started = []

    def start(*args, name="gw", **kw):
        p = start_gateway(tmp_path / f"{name}{len(started)}", *args, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def gateway(gateway_factory):
    return gateway_factory()


@pytest.fixture(autouse=True)
def jp_asyncio_loop(request):
    """pytest-jupyter's loop fixture (this overrides it) is autouse once its plugin is loaded,
    which tests/handlers does: there it gives the in-process server its loop; elsewhere (real
    processes, Playwright's own loop) a private loop that is never running, so closing it after
    the test cannot fail."""
    if "jp_fetch" not in request.fixturenames and "jp_serverapp" not in request.fixturenames:
        loop = asyncio.new_event_loop()  # private: never the running one, safe to close
        yield loop
        loop.close()
        return
    from jupyter_core.utils import ensure_event_loop

    loop = ensure_event_loop(prefer_selector_loop=True)
    yield loop
    loop.close()
