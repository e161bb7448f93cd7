"""Mount drive end to end: the dialog mounts an S3 bucket (a real moto_server) into the runtime's
workspace, a notebook cell on that runtime reads and writes through it, Flush puts the new file in
the bucket, Unmount removes the folder. The secret never lands in browser storage."""

import re

import pytest
from playwright.sync_api import expect

from tests.mounts.conftest import S3_KEY, S3_SECRET, moto  # noqa: F401  (moto: the fixture)
from tests.support.procs import start_stock_gateway

from .conftest import shot
from .lab import open_notebook, run_cell

pytestmark = pytest.mark.browser


def test_mount_s3_from_dialog_then_read_write_flush(lab_env, page, moto):  # noqa: F811
    bucket = moto.bucket()
    moto.client().put_object(Bucket=bucket, Key="data/hello.txt", Body=b"hello from the bucket\n")
    workspace = lab_env.cpu.root
    lab_env.write_notebook("drive.ipynb", "accel--cpu-box--python3", ["print('x')"])
    open_notebook(page, lab_env, "drive.ipynb")
    try:
        page.locator(".jp-SideBar li[title^='Runtime files']").first.click()
        files = page.locator("#jp-accel-files")
        expect(files.locator(".jp-AccelFiles-header")).to_have_text("Runtime: CPU box")

        files.locator(".jp-Toolbar [data-command='accel:mount-drive']").click()
        dialog = page.locator(".jp-Dialog")
        expect(dialog).to_contain_text("Mount drive")
        try:
            expect(dialog.locator(".jp-AccelMounts-empty")).to_have_text("No folders mounted.")
        finally:
            shot(page, "mount-drive-opened")
        # No remotes configured on this runtime: the S3 form is the one shown.
        expect(dialog.locator("input[name='mount_point']")).to_have_value("drive")
        dialog.locator("input[name='endpoint']").fill(moto.url)
        dialog.locator("input[name='bucket']").fill(f"{bucket}/data")
        dialog.locator("input[name='access_key_id']").fill(S3_KEY)
        # The secret key by name, from the Secrets panel's store: the server fills it in.
        r = lab_env.lab.api("PUT", "/accel/secrets/S3_SECRET", json={"value": S3_SECRET})
        assert r.status_code in (200, 201), r.text
        dialog.locator("input[name='secret_access_key_secret']").fill("S3_SECRET")
        dialog.locator("button.jp-AccelMounts-mount").click()

        row = dialog.locator(".jp-AccelMounts-row")
        expect(row).to_have_count(1, timeout=30000)
        expect(row.locator(".jp-AccelMounts-point")).to_have_text("drive")
        expect(row.locator(".jp-AccelMounts-label")).to_have_text(
            re.compile(r"^(live|synced, not live)$")
        )
        expect(row).to_contain_text(f"user:{bucket}/data")
        expect(dialog.locator("input[name='secret_access_key']")).to_have_value("")  # not kept
        expect(dialog.locator(".jp-AccelMounts-actions + .jp-AccelMounts-error")).to_have_text("")
        page.wait_for_timeout(300)
        shot(page, "mount-drive", doc=True)
        mounts = lab_env.cpu.api("GET", "/api/accel/mounts").json()
        assert [(m["mount_point"], m["state"]) for m in mounts] == [("drive", "mounted")]

        # A second mount on the same folder: the gateway's message is shown.
        dialog.locator("input[name='secret_access_key']").fill(S3_SECRET)
        dialog.locator("button.jp-AccelMounts-mount").click()
        expect(dialog.locator(".jp-AccelMounts-actions + .jp-AccelMounts-error")).to_contain_text(
            "Error:", timeout=15000
        )
        dialog.locator(".jp-Dialog-footer button", has_text="Close").click()
        expect(dialog).to_have_count(0)

        stored = page.evaluate(
            "() => JSON.stringify(Object.assign({}, localStorage, sessionStorage))"
        )
        assert S3_SECRET not in stored and S3_KEY not in stored
        assert S3_SECRET not in lab_env.lab.logtext() and S3_SECRET not in lab_env.cpu.logtext()

        drive = workspace / "drive"
        out = run_cell(
            page,
            0,
            f"print(open({str(drive / 'hello.txt')!r}).read())\n"
            f"open({str(drive / 'from-cell.txt')!r}, 'w').write('written in a cell')\n",
        )
        assert "hello from the bucket" in out, out

        files.locator(".jp-Toolbar [data-command='accel:mount-drive']").click()
        row = dialog.locator(".jp-AccelMounts-row")
        expect(row.locator(".jp-AccelMounts-pending")).to_have_text(re.compile(r"^\d+$"))
        row.locator("button.jp-AccelMounts-flush").click()
        expect(row.locator(".jp-AccelMounts-pending")).to_have_text("0", timeout=30000)
        expect(row.locator("button.jp-AccelMounts-flush")).to_be_enabled(timeout=30000)
        assert moto.get(bucket, "data/from-cell.txt") == b"written in a cell"

        row.locator("button.jp-AccelMounts-unmount").click()
        expect(dialog.locator(".jp-AccelMounts-empty")).to_be_visible(timeout=30000)
        assert lab_env.cpu.api("GET", "/api/accel/mounts").json() == []
        dialog.locator(".jp-Dialog-footer button", has_text="Close").click()
    finally:
        for m in lab_env.cpu.api("GET", "/api/accel/mounts").json():
            lab_env.cpu.api("DELETE", f"/api/accel/mounts/{m['id']}")


def test_runtime_without_mounts_says_so(lab_env, page, tmp_path):
    stock = start_stock_gateway(tmp_path / "stock")  # the stock kernel gateway: no /api/accel
    try:
        r = lab_env.lab.api(
            "POST",
            "/accel/runtimes",
            json={"name": "stock-box", "url": stock.url, "token": stock.token},
        )
        assert r.status_code in (200, 201), r.text
        assert lab_env.lab.api("GET", "/accel/runtimes/stock-box/mounts/remotes").status_code == 501
        lab_env.write_notebook("stock.ipynb", "accel--stock-box--python3", ["print('x')"])
        open_notebook(page, lab_env, "stock.ipynb")
        page.locator(".jp-SideBar li[title^='Runtime files']").first.click()
        files = page.locator("#jp-accel-files")
        expect(files.locator(".jp-AccelFiles-header")).to_contain_text("stock-box")
        # No contents API there: an empty listing, no "Directory not found" error.
        page.wait_for_timeout(1000)
        expect(page.locator(".jp-Dialog")).to_have_count(0)
        files.locator(".jp-Toolbar [data-command='accel:mount-drive']").click()
        dialog = page.locator(".jp-Dialog")
        expect(dialog).to_contain_text("This runtime does not support mounts.")
        dialog.locator("button", has_text="OK").click()
    finally:
        lab_env.lab.api("DELETE", "/accel/runtimes/stock-box")
        stock.stop()
