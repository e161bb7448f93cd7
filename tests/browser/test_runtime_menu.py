"""Runtime > Change runtime type in a real browser: the kernel moves to the GPU runtime."""

import json

import pytest
from playwright.sync_api import expect

from .conftest import shot
from .lab import menu, open_notebook, run_cell, wait_idle

pytestmark = pytest.mark.browser

# Each gateway runs with its own ACCEL_TEST_RUNTIME; its kernels inherit it.
PROBE = "import os; print('RUNTIME=' + os.environ.get('ACCEL_TEST_RUNTIME', 'local'))"


def test_change_runtime_and_reopen(lab_env, page):
    lab_env.write_notebook("switch.ipynb", "accel--cpu-box--python3", [PROBE])
    open_notebook(page, lab_env, "switch.ipynb")
    out = run_cell(page, 0)
    assert "RUNTIME=cpu-gateway" in out, out

    menu(page, "Runtime", "Change runtime type")
    dialog = page.locator(".jp-Dialog")
    expect(dialog.locator(".jp-AccelRuntimeType-form")).to_be_visible()
    # TPU: no runtime has one, so it is disabled and says why.
    tpu = dialog.locator("input[name=accel-accelerator][value=tpu]")
    expect(tpu).to_be_disabled()
    expect(dialog).to_contain_text("No connected runtime has a TPU")
    dialog.locator("input[name=accel-accelerator][value=gpu]").check()
    expect(dialog).to_contain_text("GPU box")
    shot(page, "change-runtime-type", doc=True)
    dialog.locator("button", has_text="Save").click()
    expect(
        page.locator(".jp-Notification-Toast-success, .Toastify__toast--success").first
    ).to_contain_text("Connected to GPU box", timeout=60000)
    wait_idle(page)
    out = run_cell(page, 0)
    assert "RUNTIME=gpu-gateway" in out, out
    page.keyboard.press("Control+s")
    page.wait_for_timeout(1000)
    saved = json.loads((lab_env.lab.root / "switch.ipynb").read_text())
    assert saved["metadata"]["accel"]["accelerator"] == "gpu"
    assert saved["metadata"]["accel"]["runtime"] == "gpu-box"

    # Reopen: a fresh page on the same notebook comes back on the GPU runtime.
    page.goto("about:blank")
    open_notebook(page, lab_env, "switch.ipynb")
    out = run_cell(page, 0)
    assert "RUNTIME=gpu-gateway" in out, out


def test_new_notebook_gets_default_accelerator(lab_env, page):
    settings = "/lab/api/settings/jupyterlab-accel:plugin"
    r = lab_env.lab.api("PUT", settings, json={"raw": json.dumps({"defaultAccelerator": "gpu"})})
    assert r.status_code == 204, r.text
    try:
        lab_env.write_notebook("fresh.ipynb", "python3", [""])
        open_notebook(page, lab_env, "fresh.ipynb")
        expect(
            page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-NotebookPanel-toolbar")
        ).to_contain_text("GPU box", timeout=60000)
        wait_idle(page)
        out = run_cell(page, 0, PROBE)
        assert "RUNTIME=gpu-gateway" in out, out
    finally:
        lab_env.lab.api("PUT", settings, json={"raw": "{}"})


def test_refusal_message_shown(lab_env, page):
    # The GPU gateway serves one kernel per device: occupy its only GPU first.
    r = lab_env.lab.api(
        "POST",
        "/api/sessions",
        json={
            "path": "hog.ipynb",
            "type": "notebook",
            "name": "hog.ipynb",
            "kernel": {"name": "accel--gpu-box--python3"},
        },
    )
    assert r.status_code == 201, r.text
    lab_env.write_notebook("refused.ipynb", "accel--cpu-box--python3", [PROBE])
    open_notebook(page, lab_env, "refused.ipynb")
    sessions = lambda: {
        s["path"]: s["kernel"] for s in lab_env.lab.api("GET", "/api/sessions").json()
    }
    before = sessions()["refused.ipynb"]
    menu(page, "Runtime", "Change runtime type")
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input[name=accel-accelerator][value=gpu]").check()
    dialog.locator("button", has_text="Save").click()
    toast = page.locator(".Toastify__toast", has_text="Could not start a kernel on GPU box")
    expect(toast.first).to_contain_text("No free device", timeout=60000)
    page.wait_for_timeout(1000)
    shot(page, "runtime-refused", doc=True)

    # The notebook keeps its old kernel on its old runtime.
    for d in page.locator(".jp-Dialog button.jp-mod-accept").all():
        d.click()
    expect(
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-NotebookPanel-toolbar")
    ).to_contain_text("CPU box", timeout=20000)
    out = run_cell(page, 0)
    assert "RUNTIME=cpu-gateway" in out, out
    assert sessions()["refused.ipynb"]["id"] == before["id"]


def test_connect_to_runtime_keeps_token_server_side(lab_env, page):
    lab_env.write_notebook("connect.ipynb", "accel--cpu-box--python3", [PROBE])
    open_notebook(page, lab_env, "connect.ipynb")
    menu(page, "Runtime", "Connect to runtime")
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input[name=url]").fill(lab_env.cpu.url)
    dialog.locator("input[name=token]").fill(lab_env.cpu.token)
    dialog.locator("input[name=name]").fill("cpu-again")
    dialog.locator("input[name=display_name]").fill("CPU again")
    shot(page, "connect-runtime", doc=True)
    dialog.locator("button", has_text="Connect").click()
    try:
        expect(
            page.locator(".Toastify__toast", has_text="Connected to runtime CPU again").first
        ).to_be_visible(timeout=20000)
        listing = lab_env.lab.api("GET", "/accel/runtimes")
        assert "cpu-again" in [r["name"] for r in listing.json()]
        assert lab_env.cpu.token not in listing.text
        storage = page.evaluate(
            "() => JSON.stringify(Object.assign({}, localStorage, sessionStorage))"
        )
        assert lab_env.cpu.token not in storage
    finally:
        lab_env.lab.api("DELETE", "/accel/runtimes/cpu-again")
