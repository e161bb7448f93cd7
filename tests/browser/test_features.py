"""Status bar GPU memory (NVML double), runtime Files panel upload, Manage sessions."""

import os
import re
import time

import pytest
from playwright.sync_api import expect

from tests.doubles.fake_nvml import write_state
from tests.support.waiting import wait_for

from .conftest import gpu_state, shot
from .lab import menu, open_notebook, run_cell

pytestmark = pytest.mark.browser


def test_status_bar_follows_gpu_memory(lab_env, page):
    lab_env.write_notebook("gpu.ipynb", "accel--gpu-box--python3", ["print('hi')"])
    write_state(lab_env.nvml_state, gpu_state(1))
    open_notebook(page, lab_env, "gpu.ipynb")
    status = page.locator(".jp-AccelStatus-text")
    expect(status).to_contain_text("GPU 1.0 GB / 16.0 GB", timeout=10000)
    expect(status).to_contain_text("RAM")
    shot(page, "status-bar", doc=True)
    write_state(lab_env.nvml_state, gpu_state(5.5))
    start = time.monotonic()
    expect(status).to_contain_text("GPU 5.5 GB / 16.0 GB", timeout=5000)
    assert time.monotonic() - start < 2.5
    status.click()
    panel = page.locator(".jp-AccelResources")
    expect(panel).to_contain_text("Fake GPU A100")
    expect(panel).to_contain_text("5.5 GB / 16.0 GB")
    write_state(lab_env.nvml_state, gpu_state(9))
    expect(panel).to_contain_text("9.0 GB / 16.0 GB", timeout=5000)
    page.wait_for_timeout(1500)
    shot(page, "resources-panel", doc=True)


def upload_in_files_panel(page, files, local) -> None:
    """The panel's Upload button, a file chosen, and the file listed."""
    with page.expect_file_chooser() as chooser:
        files.locator(
            ".jp-Toolbar button[title='Upload Files'], .jp-Toolbar [data-command], .jp-id-upload"
        ).filter(has=page.locator("[data-icon='ui-components:file-upload']")).first.click()
    chooser.value.set_files(str(local))
    expect(files.locator(".jp-DirListing-itemText", has_text=local.name)).to_be_visible(
        timeout=30000
    )


def test_files_panel_upload_then_read_from_cell(lab_env, page, tmp_path):
    lab_env.write_notebook("files.ipynb", "accel--gpu-box--python3", ["print('x')"])
    open_notebook(page, lab_env, "files.ipynb")
    page.locator(
        ".jp-SideBar [title='Runtime files'], .jp-SideBar li[title^='Runtime files']"
    ).first.click()
    files = page.locator("#jp-accel-files")
    expect(files.locator(".jp-AccelFiles-header")).to_have_text("Runtime: GPU box")
    local = tmp_path / "hello-upload.txt"
    local.write_text("uploaded through the Files panel\n")
    upload_in_files_panel(page, files, local)
    assert (
        lab_env.gpu.root / "hello-upload.txt"
    ).read_text() == "uploaded through the Files panel\n"
    shot(page, "files-panel", doc=True)
    out = run_cell(page, 0, f"print(open({str(lab_env.gpu.root / 'hello-upload.txt')!r}).read())")
    assert "uploaded through the Files panel" in out, out

    # Over 1 MiB JupyterLab uploads in chunks, which the server writes behind (uploads.py).
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(2_600_000))
    upload_in_files_panel(page, files, big)
    landed = lab_env.gpu.root / "weights.bin"
    wait_for(lambda: landed.is_file() and landed.stat().st_size == 2_600_000, 20, "weights.bin")
    assert landed.read_bytes() == big.read_bytes()
    assert not list(lab_env.gpu.root.glob(".weights.bin.accel-upload-*")), "no leftover"

    files.locator(".jp-Toolbar [data-command='accel:mount-drive']").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Mount drive")
    page.wait_for_timeout(500)
    shot(page, "mount-drive-dialog")  # docs/screenshots/mount-drive.png: test_mount_drive.py
    dialog.locator("button", has_text=re.compile("Cancel|OK|Close")).first.click()


def test_manage_sessions_lists_and_terminates(lab_env, page):
    lab_env.write_notebook("sess.ipynb", "accel--cpu-box--python3", ["print('s')"])
    r = lab_env.lab.api(
        "POST",
        "/api/sessions",
        json={
            "path": "other.ipynb",
            "type": "notebook",
            "name": "other.ipynb",
            "kernel": {"name": "accel--gpu-box--python3"},
        },
    )
    assert r.status_code == 201, r.text
    other = r.json()
    open_notebook(page, lab_env, "sess.ipynb")
    menu(page, "Runtime", "Manage sessions")
    dialog = page.locator(".jp-Dialog")
    row = dialog.locator(f"tr[data-kernel-id='{other['kernel']['id']}']")
    expect(row).to_contain_text("gpu-box", timeout=15000)
    # its row may first show the kernel still starting, before its session (refresh: 5 s)
    expect(dialog.locator("tr", has_text="sess.ipynb")).to_contain_text("cpu-box", timeout=15000)
    shot(page, "manage-sessions", doc=True)
    row.locator("button", has_text="Terminate").click()
    expect(row).to_have_count(0, timeout=15000)
    kernels = [s["kernel"]["id"] for s in lab_env.lab.api("GET", "/api/sessions").json()]
    assert other["kernel"]["id"] not in kernels
    dialog.locator("button", has_text="Close").click()


def test_cull_warning_with_keep_alive(lab_env, page):
    lab_env.write_notebook("brief.ipynb", "accel--brief-box--python3", ["print('b')"])
    open_notebook(page, lab_env, "brief.ipynb")
    toast = page.locator(".Toastify__toast", has_text="brief.ipynb")
    expect(toast.first).to_be_visible(timeout=20000)
    expect(toast.first.locator("button", has_text="Keep alive")).to_be_visible()
    page.wait_for_timeout(1000)  # the toast finishes sliding in
    shot(page, "cull-warning", doc=True)
    before = [
        s for s in lab_env.lab.api("GET", "/accel/sessions").json() if s["path"] == "brief.ipynb"
    ][0]
    time.sleep(1.1)
    toast.first.locator("button", has_text="Keep alive").click()
    expect(page.locator(".Toastify__toast", has_text="kept alive").first).to_be_visible(
        timeout=10000
    )
    after = [
        s for s in lab_env.lab.api("GET", "/accel/sessions").json() if s["path"] == "brief.ipynb"
    ][0]
    assert after["expires_at"] > before["expires_at"], (before, after)
