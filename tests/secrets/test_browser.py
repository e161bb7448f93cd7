"""Secrets as a person uses them: typed into the Secrets panel, read in a notebook cell, the
grant prompt answered with Allow; the value never shows on the page or in the saved notebook."""

from __future__ import annotations

import hashlib
import re
import secrets
import time

import pytest

pytest.importorskip("playwright.sync_api")

from playwright.sync_api import expect  # noqa: E402

from tests.browser.conftest import browser_context, lab_env, page, shot  # noqa: E402,F401
from tests.browser.lab import open_notebook  # noqa: E402

pytestmark = pytest.mark.browser

VALUE = "hf_" + secrets.token_hex(16)
CELL = (
    "import hashlib\n"
    "from accel_gateway import userdata\n"
    "print('sha', hashlib.sha256(userdata.get('HF_TOKEN').encode()).hexdigest())"
)


def test_panel_then_prompt_then_value_in_the_kernel(lab_env, page):  # noqa: F811
    page.goto(lab_env.url("/lab?reset"))
    page.wait_for_selector(".jp-LabShell", timeout=60000)
    page.locator(".lm-TabBar-tab[data-id='jp-accel-secrets']").click()
    panel = page.locator("#jp-accel-secrets")
    panel.get_by_label("Secret name").fill("HF_TOKEN")
    panel.get_by_label("Secret value").fill(VALUE)
    panel.get_by_role("button", name="Save").click()
    expect(panel.locator(".jp-AccelSecrets-item")).to_contain_text("HF_TOKEN")
    expect(panel).to_contain_text("No notebook may read it yet")

    deadline = time.monotonic() + 30  # the notebook's kernel spec is listed (no kernel picker)
    while "accel--cpu-box--python3" not in lab_env.lab.api("GET", "/api/kernelspecs").text:
        assert time.monotonic() < deadline, "the runtime's kernel spec never appeared"
        time.sleep(0.5)
    lab_env.write_notebook("analysis.ipynb", "accel--cpu-box--python3", [CELL])
    open_notebook(page, lab_env, "analysis.ipynb")
    nb = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    dialog = page.locator(".jp-Dialog", has_text="wants to read")
    cell = nb.locator(".jp-Cell").first
    for _ in range(3):  # a run clicked before the kernel's connection is ready does nothing
        cell.locator(".jp-InputArea-prompt").click()
        nb.locator(".jp-Toolbar [data-command='notebook:run-cell-and-select-next']").click()
        try:
            expect(cell.locator(".jp-InputArea-prompt")).to_have_text("[*]:", timeout=5000)
            break
        except AssertionError:
            continue
    expect(dialog).to_contain_text("analysis.ipynb", timeout=30000)
    expect(dialog).to_contain_text("wants to read the secret HF_TOKEN")
    shot(page, "secrets-grant-prompt")
    dialog.get_by_role("button", name="Allow").click()
    digest = hashlib.sha256(VALUE.encode()).hexdigest()
    out = nb.locator(".jp-Cell").first.locator(".jp-OutputArea-output")
    expect(out).to_contain_text(f"sha {digest}", timeout=30000)

    page.keyboard.press("Control+s")
    page.wait_for_timeout(1500)
    saved = (lab_env.lab.root / "analysis.ipynb").read_text()
    assert digest in saved and VALUE not in saved
    assert VALUE not in page.content()
    page.locator(".lm-TabBar-tab[data-id='jp-accel-secrets']").click()
    expect(page.locator("#jp-accel-secrets")).to_contain_text(re.compile("analysis.ipynb"))
    shot(page, "secrets-panel")
