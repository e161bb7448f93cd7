"""Notebook 7 (`jupyter notebook`) with the extension: the Runtime menu works on a notebook page,
cells run on the runtime, and neither the notebook page nor the file tree page shows an error
from the extension (the status bar item has no status bar there: absent, quietly)."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.procs import REPO, start_gateway, start_server

from .conftest import CHROMIUM, FLAGS, sync_api

pytestmark = pytest.mark.browser

pytest.importorskip("notebook", minversion="7")


@pytest.fixture(scope="module")
def nb7(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    if not (REPO / "jupyterlab_accel" / "labextension" / "package.json").exists():
        pytest.skip("labextension not built (jlpm build:prod)")
    tmp = Path(tempfile.mkdtemp(prefix="accel-nb7-"))
    gw = start_gateway(tmp / "cpu", env={"ACCEL_TEST_RUNTIME": "nb7-gateway"})
    cfg = {
        "RuntimeRegistry": {
            "runtimes": [
                {
                    "name": "cpu-box",
                    "display_name": "CPU box",
                    "url": gw.url,
                    "token_env": "ACCEL_TEST_CPU_TOKEN",
                }
            ]
        },
        "AccelState": {"state_dir": str(tmp / "state")},
        "EmbeddedGateway": {"enabled": False},
    }
    (tmp / "nb").mkdir()
    cfg_file = tmp / "nb" / "accel_config.json"
    cfg_file.write_text(json.dumps(cfg))
    env = {
        "ACCEL_TEST_CPU_TOKEN": gw.token,
        "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
    }
    try:
        server = start_server(tmp / "nb", f"--config={cfg_file}", env=env, app="notebook")
    except Exception:
        gw.stop()
        raise
    try:
        yield server
    finally:
        server.stop()
        gw.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def nb7_page(tmp_path):
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
        problems: list[str] = []
        page.on(
            "pageerror",
            lambda e: problems.append(f"pageerror: {e} {e.stack or ''} @ {page.url}"),
        )
        page.on(
            "console",
            lambda m: (
                problems.append(f"console: {m.text} @ {page.url}")
                if m.type == "error" and re.search(r"accel", m.text, re.I)
                else None
            ),
        )
        page.problems = problems  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            ctx.close()


def test_notebook7_runtime_menu_and_cells(nb7, nb7_page):
    page = nb7_page
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {
                "name": "accel--cpu-box--python3",
                "display_name": "x",
                "language": "python",
            }
        },
        "cells": [
            {
                "cell_type": "code",
                "id": "c0",
                "metadata": {},
                "source": "import os; print('RUNTIME=' + os.environ.get('ACCEL_TEST_RUNTIME', '?'))",
                "outputs": [],
                "execution_count": None,
            }
        ],
    }
    (nb7.root / "nb7.ipynb").write_text(json.dumps(nb))
    page.goto(f"{nb7.url}/notebooks/nb7.ipynb?token={nb7.token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60000)
    page.wait_for_timeout(1500)

    # The Runtime menu is in Notebook 7's menu bar and its dialog lists the runtime.
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Runtime$")).click()
    page.locator(".lm-Menu-itemLabel", has_text="Change runtime type").first.click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("CPU box", timeout=20000)
    dialog.locator("button", has_text="Cancel").click()
    expect(dialog).to_have_count(0)

    cell = page.locator(".jp-Notebook .jp-Cell").first
    out = cell.locator(".jp-OutputArea-output")
    for _ in range(3):
        cell.locator(".jp-InputArea-prompt").click()
        page.keyboard.press("Shift+Enter")
        try:
            expect(out.first).to_be_visible(timeout=20000)
            break
        except AssertionError:
            continue
    expect(out.first).to_contain_text("RUNTIME=nb7-gateway", timeout=20000)

    assert not ours(page), ours(page)

    # The tree page: the extension's plugins load there without errors of their own.
    page.goto(f"{nb7.url}/tree?token={nb7.token}")
    page.wait_for_selector(".jp-DirListing-item", timeout=60000)
    expect(page.locator(".jp-DirListing-item", has_text="nb7.ipynb")).to_be_visible()
    page.wait_for_timeout(1500)
    assert not ours(page), ours(page)


def ours(page) -> list[str]:
    """Errors with the extension's code on their stack, or console errors naming it. Notebook
    7's own shortcuts plugin throws ("reading 'schema'", only notebook_core frames) when a
    plugin's settings are loaded that its registry does not hold: seen with and without our
    settings loads, reported, not counted here."""
    return [p for p in page.problems if "jupyterlab-accel" in p or p.startswith("console:")]
