"""Small JupyterLab page helpers for the browser tests (what a user clicks)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect


def open_notebook(page: Page, env, name: str) -> None:
    page.goto(env.url(f"/lab/tree/{name}?reset"))  # no tabs restored from earlier tests
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=60000)
    wait_idle(page)
    page.wait_for_timeout(1500)  # the kernel's websocket settles


def wait_idle(page: Page, timeout: float = 60000) -> None:
    page.wait_for_selector(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status='idle']",
        timeout=timeout,
    )


def menu(page: Page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(top)}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def run_cell(page: Page, index: int, code: str | None = None) -> str:
    """Put code (optional) in cell `index`, run it, return its output text."""
    nb = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    cell = nb.locator(".jp-Cell").nth(index)
    if code is not None:
        cell.locator(".cm-content").click()
        page.keyboard.press("Control+a")
        page.keyboard.type(code)
    else:
        cell.locator(".jp-InputArea-prompt").click()
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.locator(".jp-Toolbar [data-command='notebook:run-cell-and-select-next']").click()
    out = cell.locator(".jp-OutputArea-output")
    expect(out.first).to_be_visible(timeout=60000)
    expect(cell.locator(".jp-InputArea-prompt")).not_to_have_text(
        re.compile(r"\[\*\]"), timeout=60000
    )
    return out.all_inner_texts() and "\n".join(out.all_inner_texts())
