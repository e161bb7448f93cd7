import pytest

from tests.support.procs import start_gateway


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
