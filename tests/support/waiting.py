"""Polling with a deadline, for tests that wait on real processes."""

from __future__ import annotations

import time


def wait_for(check, timeout: float, what: str, interval: float = 0.2):
    """check()'s first truthy value within `timeout` seconds, else an AssertionError naming
    what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
