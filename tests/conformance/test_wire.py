"""Every scenario on every target, both websocket protocols, compared with stock
jupyter_server: frame fields and types, per-channel order and status sequences, replies,
buffers. A difference fails unless DELIBERATE names it, with the phrase of
docs/architecture.md that explains it.

`UPDATE_CONFORMANCE_DOC=1` rewrites the tables of docs/conformance.md from this run
(conftest.pytest_sessionfinish)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import TARGETS
from .scenarios import BOTH_PROTOCOLS, OWN_KERNEL, SCENARIOS
from .wire import dump

pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parents[2]
REFERENCE = "stock_server"
PROTOCOLS = ("json", "v1")
# (scenario, target, part) -> phrase of docs/architecture.md naming the difference deliberate
DELIBERATE: dict[tuple[str, str, str], str] = {
    ("shutdown_client_attached", "gateway", "facts"): (
        "gateway closes the websockets of a kernel that ended"
    ),
}
RESULTS: dict[tuple[str, str, str], str] = {}  # (scenario, protocol, target) -> verdict


@pytest.fixture(scope="module")
def shared_kernels(targets):
    """One kernel per target and protocol for the scenarios that leave it running."""
    kernels = {}
    yield lambda t, p: kernels.setdefault((t, p), targets[t].start_kernel())
    with ThreadPoolExecutor(8) as pool:  # kernel shutdowns take seconds each: in parallel
        for (t, _), kid in kernels.items():
            pool.submit(targets[t].api, "DELETE", f"/api/kernels/{kid}")


def differences(ref: dict, got: dict) -> dict:
    return {
        part: (ref[part], got[part])
        for part in ("trace", "shapes", "facts")
        if ref[part] != got[part]
    }


CASES = [(s, p) for s in SCENARIOS for p in PROTOCOLS if p == "json" or s in BOTH_PROTOCOLS]


@pytest.mark.parametrize(("scenario", "protocol"), CASES)
def test_scenario_matches_stock(targets, shared_kernels, scenario, protocol):
    run = SCENARIOS[scenario]
    seen = {}
    for name in TARGETS:
        target = targets[name]
        kid = target.start_kernel() if scenario in OWN_KERNEL else shared_kernels(name, protocol)
        try:
            seen[name] = run(target, kid, protocol)
        except Exception as e:  # one target's failure is reported with the others
            seen[name] = {"error": f"{type(e).__name__}: {e}"[:2000]}
        finally:
            if scenario in OWN_KERNEL and scenario != "shutdown_client_attached":
                target.api("DELETE", f"/api/kernels/{kid}")
    ref = seen[REFERENCE]
    assert "error" not in ref, ref
    architecture = (REPO / "docs" / "architecture.md").read_text()
    failures = {}
    for name in TARGETS:
        got = seen[name]
        if "error" in got:
            failures[name] = got["error"]
            RESULTS[(scenario, protocol, name)] = "fails"
            continue
        diff = differences(ref, got)
        unexplained = {}
        for part, pair in diff.items():
            phrase = DELIBERATE.get((scenario, name, part))
            if phrase is None or phrase not in architecture:
                unexplained[part] = pair
        if unexplained:
            failures[name] = unexplained
        RESULTS[(scenario, protocol, name)] = (
            "differs" if unexplained else ("same, deliberate difference" if diff else "same")
        )
    assert not failures, dump(failures)
