"""Colab's runtime extras in the browser. A terminal on the runtime, opened as a person does: Runtime > Open terminal from a notebook on
that runtime, and the Launcher's card. The terminal is JupyterLab's own widget; its text is read
through xterm's accessibility tree (the user's terminal setting screenReaderMode, which our
terminals honour like every other terminal setting). And the notebook's files on its runtime:
the status item's synced and conflict states."""

from __future__ import annotations

import re
import socket

import pytest
from playwright.sync_api import expect

from .conftest import shot
from .lab import menu, open_notebook, run_cell

pytestmark = pytest.mark.browser


def terminal_settings(lab_env) -> None:
    folder = lab_env.tmp / "lab-settings" / "@jupyterlab" / "terminal-extension"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plugin.jupyterlab-settings").write_text('{"screenReaderMode": true}')


def rows(terminal) -> str:
    return terminal.locator(".xterm-accessibility-tree").inner_text()


def test_runtime_menu_opens_a_terminal_on_the_notebooks_runtime(lab_env, page):
    terminal_settings(lab_env)
    lab_env.write_notebook("term.ipynb", "accel--cpu-box--python3", ["print(1)"])
    open_notebook(page, lab_env, "term.ipynb")
    menu(page, "Runtime", "Open terminal on the runtime")
    tab = page.locator(".lm-TabBar-tab", has_text=re.compile(r"Terminal \d+ · CPU box"))
    try:
        expect(tab).to_be_visible(timeout=20000)
    finally:
        shot(page, "runtime-terminal-opened")
    terminal = page.locator(".jp-MainAreaWidget[data-accel-runtime='cpu-box'] .jp-Terminal")
    expect(terminal.locator(".xterm-accessibility-tree")).to_be_attached(timeout=20000)
    terminal.click()
    page.keyboard.type("hostname; pwd; echo $CUDA_VISIBLE_DEVICES; echo $ACCEL_TEST_RUNTIME\n")
    workspace = str(lab_env.cpu.root)
    expect(terminal.locator(".xterm-accessibility-tree")).to_contain_text(
        "cpu-gateway", timeout=20000
    )
    lines = [line.strip() for line in rows(terminal).splitlines()]
    assert workspace in lines, "pwd answers the runtime's workspace"
    assert socket.gethostname() in lines
    assert "cpu-gateway" in lines, "the shell has the runtime gateway's environment"
    expect(tab).to_be_visible()  # the tab still names the runtime once the shell is up
    shot(page, "runtime-terminal", doc=True)


def test_launcher_card_per_runtime(lab_env, page):
    terminal_settings(lab_env)
    page.goto(lab_env.url("/lab?reset"))
    menu(page, "File", "New Launcher")
    card = page.locator(".jp-LauncherCard", has_text="Terminal · GPU box")
    expect(card).to_be_visible(timeout=30000)
    expect(page.locator(".jp-LauncherCard", has_text="Terminal · CPU box")).to_be_visible()
    card.click()
    terminal = page.locator(".jp-MainAreaWidget[data-accel-runtime='gpu-box'] .jp-Terminal")
    expect(terminal.locator(".xterm-accessibility-tree")).to_be_attached(timeout=20000)
    terminal.click()
    page.keyboard.type("echo $ACCEL_TEST_RUNTIME\n")
    expect(terminal.locator(".xterm-accessibility-tree")).to_contain_text(
        "gpu-gateway", timeout=20000
    )


def test_notebook_files_status_synced_then_conflict(lab_env, page):
    folder = lab_env.lab.root / "project"
    folder.mkdir(exist_ok=True)
    (folder / "data.csv").write_text("a,b\n1,2\n")
    lab_env.write_notebook(
        "project/sync.ipynb",
        "accel--cpu-box--python3",
        ["print(open('data.csv').read().strip())", "open('data.csv', 'w').write('kernel edit\\n')"],
    )
    open_notebook(page, lab_env, "project/sync.ipynb")
    status = page.locator(".jp-AccelFileSync")
    expect(status).to_have_text("Files: synced", timeout=20000)
    assert "a,b" in run_cell(page, 0)
    assert (lab_env.cpu.root / "project" / "data.csv").exists()
    (folder / "data.csv").write_text("local edit, not yet on the runtime\n")
    run_cell(page, 1)
    expect(status).to_have_text("Files: 1 conflict", timeout=20000)
    assert (folder / "data.conflict-cpu-box.csv").read_text() == "kernel edit\n"
    assert (folder / "data.csv").read_text() == "local edit, not yet on the runtime\n"
    status.click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("data.conflict-cpu-box.csv")
    shot(page, "notebook-files-conflict", doc=True)
    dialog.locator("button", has_text="Close").click()
