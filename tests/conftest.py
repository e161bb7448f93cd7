import signal

import pytest

from tests.support.procs import start_gateway


def _interrupt_on_sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


# A test run stopped with SIGTERM (e.g. `timeout`, CI's limit) still tears its fixtures down,
# so the gateways and servers it started are stopped by PID instead of leaking.
if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)


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
