"""First use as a newcomer meets it: a lab with its zero-config embedded runtime ("This machine")
plus one GPU runtime, each test in a fresh Chromium profile where nothing was clicked before.
The first click on a Launcher card, File > New > Notebook and the Console card each give
something that runs code; the Launcher offers one card per runtime; running cells writes nothing
of ours into the notebook, and reopening it (outputs restored from the journal) leaves it clean."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.doubles.fake_nvml import write_state
from tests.support.procs import REPO, start_gateway, start_server

from .conftest import CHROMIUM, FLAGS, NVML_DOUBLE, gpu_state, shot, sync_api
from .lab import wait_idle

pytestmark = pytest.mark.browser

LOCAL_CARD = "Python 3 (ipykernel) · CPU · This machine"
GPU_CARD = "Python 3 (ipykernel) · GPU Fake · GPU box"  # accelerator label: kind + model


class FirstUseEnv:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        state = tmp / "nvml.json"
        write_state(state, gpu_state(1))
        self.gpu = start_gateway(tmp / "gpu", NVML_DOUBLE, env={"FAKE_NVML_STATE": str(state)})
        cfg = {
            "RuntimeRegistry": {
                "runtimes": [
                    {
                        "name": "gpu-box",
                        "display_name": "GPU box",
                        "url": self.gpu.url,
                        "token_env": "ACCEL_TEST_GPU_TOKEN",
                    }
                ]
            },
            "AccelState": {"state_dir": str(tmp / "state")},
            "LabApp": {
                "news_url": None,
                "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
            },
        }
        (tmp / "lab").mkdir(parents=True)
        cfg_file = tmp / "lab" / "accel_config.json"
        cfg_file.write_text(json.dumps(cfg))
        settings = tmp / "lab-settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        env = {
            "ACCEL_TEST_GPU_TOKEN": self.gpu.token,
            "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"),
        }
        try:
            self.lab = start_server(
                tmp / "lab", f"--config={cfg_file}", env=env, app="jupyterlab", timeout=90
            )
        except Exception:
            self.gpu.stop()
            raise

    def stop(self):
        self.lab.stop()
        self.gpu.stop()

    def url(self, path: str) -> str:
        return f"{self.lab.url}{path}?token={self.lab.token}"


@pytest.fixture(scope="module")
def first_env():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    if not (REPO / "jupyterlab_accel" / "labextension" / "package.json").exists():
        pytest.skip("labextension not built (jlpm build:prod)")
    tmp = Path(tempfile.mkdtemp(prefix="accel-first-use-"))
    env = FirstUseEnv(tmp)
    try:
        yield env
    finally:
        env.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def fresh_page(first_env, tmp_path):
    """A page in a new Chromium profile, on a lab with no kernels and no workspace state."""
    shutil.rmtree(first_env.tmp / "lab-workspaces", ignore_errors=True)
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1400, "height": 850},
        )
        page = ctx.new_page()
        page.set_default_timeout(30000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            ctx.close()
            for s in first_env.lab.api("GET", "/api/sessions").json():
                first_env.lab.api("DELETE", f"/api/sessions/{s['id']}")


def open_lab(page, env) -> None:
    page.goto(env.url("/lab"))
    page.wait_for_selector(".jp-Launcher", timeout=60000)
    page.wait_for_timeout(1000)  # the extension's plugins have activated


def launcher_cards(page, section: str):
    return page.locator(".jp-Launcher-section", has_text=section).locator(".jp-LauncherCard")


def run_in_notebook(page, code: str) -> str:
    """Type code into the first cell of the visible notebook, run it, return the output text.
    Runs again (at most 3 times) when the kernel connection was not ready and nothing started."""
    nb = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    wait_idle(page, 90000)
    cell = nb.locator(".jp-Cell").first
    cell.locator(".cm-content").click()
    page.keyboard.type(code)
    out = cell.locator(".jp-OutputArea-output")
    for _ in range(3):
        cell.locator(".jp-InputArea-prompt").click()
        nb.locator(".jp-Toolbar [data-command='notebook:run-cell-and-select-next']").click()
        try:
            expect(out.first).to_be_visible(timeout=20000)
            break
        except AssertionError:
            continue
    expect(out.first).to_be_visible(timeout=20000)
    expect(cell.locator(".jp-InputArea-prompt")).not_to_have_text(re.compile(r"\*"))
    return "\n".join(out.all_inner_texts())


def no_error_dialog(page) -> None:
    dialogs = page.locator(".jp-Dialog")
    assert dialogs.count() == 0, dialogs.first.inner_text()
    toasts = page.locator(".Toastify__toast--error")
    assert toasts.count() == 0, toasts.first.inner_text()


def test_launcher_offers_one_card_per_runtime(first_env, fresh_page):
    page = fresh_page
    specs = first_env.lab.api("GET", "/api/kernelspecs").json()
    assert specs["default"] == "accel--local--python3", specs["default"]
    assert "python3" not in specs["kernelspecs"], list(specs["kernelspecs"])
    open_lab(page, first_env)
    for section in ("Notebook", "Console"):
        cards = launcher_cards(page, section)
        expect(cards.filter(has_text="Python")).to_have_count(2)
        labels = sorted(t.strip() for t in cards.filter(has_text="Python").all_inner_texts())
        assert labels == sorted([LOCAL_CARD, GPU_CARD]), labels
    shot(page, "launcher-cards", doc=True)


def test_first_launcher_click_opens_a_notebook_that_runs(first_env, fresh_page):
    page = fresh_page
    open_lab(page, first_env)
    launcher_cards(page, "Notebook").filter(has_text=LOCAL_CARD).click()
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook", timeout=60000)
    no_error_dialog(page)
    out = run_in_notebook(page, "import os; print('ran in', os.getcwd())")
    assert f"ran in {first_env.lab.root}" in out, out
    # Created by the default file browser, on this server's disk, and on the embedded runtime.
    assert (first_env.lab.root / "Untitled.ipynb").exists()
    sessions = first_env.lab.api("GET", "/api/sessions").json()
    assert [s["kernel"]["name"] for s in sessions] == ["accel--local--python3"], sessions
    assert not page.errors, page.errors  # type: ignore[attr-defined]


def test_first_file_new_notebook_runs(first_env, fresh_page):
    page = fresh_page
    open_lab(page, first_env)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^File$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^New$")).first.hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Notebook$")).first.click()
    dialog = page.locator(".jp-Dialog")
    # Stock JupyterLab asks which kernel; the default one is the embedded runtime's.
    expect(dialog).to_contain_text("Select Kernel", timeout=30000)
    expect(dialog.locator("select")).to_have_value('{"name":"accel--local--python3"}')
    dialog.locator("button.jp-mod-accept").click()
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook", timeout=60000)
    out = run_in_notebook(page, "print(6 * 7)")
    assert "42" in out, out
    no_error_dialog(page)
    names = [s["kernel"]["name"] for s in first_env.lab.api("GET", "/api/sessions").json()]
    assert names == ["accel--local--python3"], names


def test_first_console_card_runs(first_env, fresh_page):
    page = fresh_page
    open_lab(page, first_env)
    launcher_cards(page, "Console").filter(has_text=LOCAL_CARD).click()
    console = page.locator(".jp-CodeConsole:not(.lm-mod-hidden)")
    expect(console).to_be_visible(timeout=60000)
    page.wait_for_selector(
        ".jp-CodeConsole:not(.lm-mod-hidden) .jp-CodeConsole-promptCell .cm-content",
        timeout=60000,
    )
    page.wait_for_timeout(1500)  # the kernel connects
    console.locator(".jp-CodeConsole-promptCell .cm-content").click()
    page.keyboard.type("print('console', 6 * 7)")
    page.keyboard.press("Shift+Enter")
    expect(console.locator(".jp-OutputArea-output", has_text="console 42")).to_be_visible(
        timeout=60000
    )
    no_error_dialog(page)


def test_running_cells_leaves_a_saved_notebook_clean(first_env, fresh_page):
    page = fresh_page
    name = "clean.ipynb"
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {
                "name": "accel--local--python3",
                "display_name": LOCAL_CARD,
                "language": "python",
            }
        },
        "cells": [
            {
                "cell_type": "code",
                "id": "c0",
                "metadata": {},
                "source": "",
                "outputs": [],
                "execution_count": None,
            }
        ],
    }
    path = first_env.lab.root / name
    path.write_text(json.dumps(nb))
    page.goto(first_env.url(f"/lab/tree/{name}"))
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=60000)
    out = run_in_notebook(page, "print('same output')")
    assert "same output" in out
    page.keyboard.press("Control+s")
    tab = page.locator(".lm-TabBar-tab", has_text=name)
    expect(tab).not_to_have_class(re.compile("jp-mod-dirty"), timeout=10000)
    saved = json.loads(path.read_text())
    assert saved["cells"][0]["metadata"] == {}, saved["cells"][0]["metadata"]
    assert "".join(saved["cells"][0]["outputs"][0]["text"]) == "same output\n"

    # Reopened: the journal's outputs are the saved ones, so the restore changes nothing.
    page.reload()
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(panel).to_have_attribute("data-accel-restored", "0", timeout=60000)
    page.wait_for_timeout(1000)
    expect(tab).not_to_have_class(re.compile("jp-mod-dirty"))
    expect(panel.locator(".jp-OutputArea-output").first).to_have_text("same output")
