"""Runtime > Connect to SSH host in a real JupyterLab (Debian Chromium via Playwright): the
unknown host key is shown with its fingerprint and trusted only after Accept, progress ends in
"Connected", the runtime is listed and healthy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ssh.conftest import fingerprint
from tests.support.procs import REPO, start_server

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def jlab(ssh_host, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    if not (REPO / "jupyterlab_accel" / "labextension" / "package.json").exists():
        pytest.skip("labextension not built (jlpm build:prod)")
    d = tmp_path_factory.mktemp("jlab")
    known_hosts = d / "known_hosts"
    known_hosts.write_text("")
    cfg = {
        "AccelState": {"state_dir": str(d / "state")},
        "EmbeddedGateway": {"enabled": False},
        "SSHProvider": {"ssh_config": [str(ssh_host.ssh_config)], "known_hosts": str(known_hosts)},
        "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
    }
    (d / "cfg.json").write_text(json.dumps(cfg))
    env = {
        "JUPYTERLAB_SETTINGS_DIR": str(d / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(d / "workspaces"),
    }
    lab = start_server(d, f"--config={d / 'cfg.json'}", env=env, app="jupyterlab", timeout=90)
    lab.extra["known_hosts"] = known_hosts
    yield lab
    for rt in lab.api("GET", "/accel/runtimes").json():
        lab.api("DELETE", f"/accel/providers/ssh/{rt['name']}")
    lab.stop()


def test_connect_to_ssh_host_from_the_runtime_menu(jlab, ssh_host, tmp_path):
    from playwright.sync_api import expect

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 850})
        page.set_default_timeout(60000)
        try:
            page.goto(f"{jlab.url}/lab?reset&token={jlab.token}")
            page.wait_for_selector(".lm-MenuBar-itemLabel", timeout=90000)
            page.locator(".lm-MenuBar-itemLabel", has_text="Runtime").click()
            page.locator(".lm-Menu-itemLabel", has_text="Connect to SSH host").first.click()
            dialog = page.locator(".jp-Dialog")
            dialog.locator("input[name=host]").fill("gpu-box")
            dialog.get_by_role("button", name="Connect").click()
            # the unknown key, with its fingerprint; nothing trusted yet
            key = page.locator(".jp-Dialog", has_text="Unknown host key")
            expect(key).to_contain_text(fingerprint(ssh_host.host_key_pub), timeout=30000)
            assert str(ssh_host.port) not in jlab.extra["known_hosts"].read_text()
            page.screenshot(path=str(tmp_path / "ssh-host-key.png"))
            key.get_by_role("button", name="Accept and connect").click()
            expect(page.locator(".Toastify__toast", has_text="Connected to gpu-box")).to_be_visible(
                timeout=180000
            )
        finally:
            browser.close()
    rts = {r["name"]: r for r in jlab.api("GET", "/accel/runtimes").json()}
    assert rts["gpu-box"]["provider"]["state"] == "ready", rts
    assert rts["gpu-box"]["healthy"], rts["gpu-box"]
    assert str(ssh_host.port) in jlab.extra["known_hosts"].read_text()
