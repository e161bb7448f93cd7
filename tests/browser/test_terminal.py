"""A terminal on the runtime, opened as a person does: Runtime > Open terminal from a notebook on
that runtime, and the Launcher's card. The terminal is JupyterLab's own widget; its text is read
through xterm's accessibility tree (the user's terminal setting screenReaderMode, which our
terminals honour like every other terminal setting)."""

from __future__ import annotations

import re
import socket

import pytest
from playwright.sync_api import expect

from .conftest import shot
from .lab import menu, open_notebook

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
