"""Manage sessions beside the kernels: a runtime's terminal (name, runtime, idle) with
Terminate, which ends it on the runtime."""

import pytest
from playwright.sync_api import expect

from .conftest import shot
from .lab import menu, open_notebook

pytestmark = pytest.mark.browser


def test_manage_sessions_shows_and_terminates_a_runtime_terminal(lab_env, page):
    r = lab_env.lab.api("POST", "/accel/runtimes/cpu-box/api/terminals", json={})
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    lab_env.write_notebook("extras.ipynb", "accel--cpu-box--python3", ["print('x')"])
    open_notebook(page, lab_env, "extras.ipynb")
    menu(page, "Runtime", "Manage sessions")
    dialog = page.locator(".jp-Dialog")
    row = dialog.locator(f"tr[data-runtime='cpu-box'][data-terminal='{name}']")
    expect(row).to_contain_text("CPU box", timeout=15000)
    expect(dialog.locator(".jp-AccelSessions-heading", has_text="Terminals")).to_be_visible()
    kernel_row = dialog.locator("tr", has_text="extras.ipynb")  # its own request: may come later
    expect(kernel_row).to_contain_text("cpu-box", timeout=15000)
    shot(page, "manage-sessions-terminals", doc=True)
    row.locator("button", has_text="Terminate").click()
    expect(row).to_have_count(0, timeout=15000)
    assert name not in [t["name"] for t in lab_env.cpu.api("GET", "/api/terminals").json()]
    dialog.locator("button", has_text="Close").click()
