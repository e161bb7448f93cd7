"""Real JupyterLab + jupyterlab_accel + two real gateways (CPU, and GPU via the NVML test double),
driven by Debian's Chromium through Python Playwright. One environment per module."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.doubles.fake_nvml import write_state
from tests.support.procs import REPO, start_gateway, start_server

GIB = 2**30
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "tests" / "artifacts"
SCREENSHOTS = REPO / "docs" / "screenshots"
NVML_DOUBLE = "--NvidiaBackend.nvml_module=tests.doubles.fake_nvml"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

sync_api = pytest.importorskip("playwright.sync_api")


def gpu_state(used_gib: float) -> list[dict]:
    return [
        {
            "name": "Fake GPU A100",
            "uuid": "GPU-fake-0",
            "memory_total": 16 * GIB,
            "memory_used": int(used_gib * GIB),
            "utilization": 35,
            "temperature": 50,
        }
    ]


class LabEnv:
    """The processes of one test module and helpers to drive them."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs = []
        self.nvml_state = tmp / "nvml.json"
        write_state(self.nvml_state, gpu_state(1))
        self.cpu = self._keep(start_gateway(tmp / "cpu", env={"ACCEL_TEST_RUNTIME": "cpu-gateway"}))
        self.gpu = self._keep(
            start_gateway(
                tmp / "gpu",
                NVML_DOUBLE,
                "--MetricsSampler.interval=0.25",
                env={"FAKE_NVML_STATE": str(self.nvml_state), "ACCEL_TEST_RUNTIME": "gpu-gateway"},
            )
        )
        # Short limits: a cull warning 2 s after a kernel goes idle.
        self.brief = self._keep(
            start_gateway(
                tmp / "brief",
                "--KernelLimits.idle_timeout=30",
                "--KernelLimits.cull_warning=28",
                "--KernelLimits.check_interval=0.5",
            )
        )
        cfg = {
            "RuntimeRegistry": {
                "runtimes": [
                    {
                        "name": "cpu-box",
                        "display_name": "CPU box",
                        "url": self.cpu.url,
                        "token_env": "ACCEL_TEST_CPU_TOKEN",
                        "price_per_hour": 0.1,
                    },
                    {
                        "name": "gpu-box",
                        "display_name": "GPU box",
                        "url": self.gpu.url,
                        "token_env": "ACCEL_TEST_GPU_TOKEN",
                        "price_per_hour": 1.2,
                    },
                    {
                        "name": "brief-box",
                        "display_name": "Brief box",
                        "url": self.brief.url,
                        "token_env": "ACCEL_TEST_BRIEF_TOKEN",
                    },
                ]
            },
            "AccelState": {"state_dir": str(tmp / "state")},
            "EmbeddedGateway": {"enabled": False},
            "LabApp": {
                "news_url": None,
                "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
            },
        }
        (tmp / "lab").mkdir(parents=True, exist_ok=True)
        cfg_file = tmp / "lab" / "accel_config.json"
        cfg_file.write_text(json.dumps(cfg))
        env = {
            "ACCEL_TEST_CPU_TOKEN": self.cpu.token,
            "ACCEL_TEST_GPU_TOKEN": self.gpu.token,
            "ACCEL_TEST_BRIEF_TOKEN": self.brief.token,
            "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"),
        }
        settings = tmp / "lab-settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        self.lab = self._keep(
            start_server(tmp / "lab", f"--config={cfg_file}", env=env, app="jupyterlab", timeout=90)
        )

    def _keep(self, proc):
        self.procs.append(proc)
        return proc

    def stop(self):
        for p in reversed(self.procs):
            p.stop()

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.lab.url}{path}{sep}token={self.lab.token}"

    def write_notebook(self, name: str, kernel: str, cells: list[str] | None = None) -> None:
        nb = {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {
                "kernelspec": {"name": kernel, "display_name": kernel, "language": "python"}
            },
            "cells": [
                {
                    "cell_type": "code",
                    "id": f"c{i}",
                    "metadata": {},
                    "source": src,
                    "outputs": [],
                    "execution_count": None,
                }
                for i, src in enumerate(cells or [""])
            ],
        }
        (self.lab.root / name).write_text(json.dumps(nb))


@pytest.fixture(scope="module")
def lab_env():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    if not (REPO / "jupyterlab_accel" / "labextension" / "package.json").exists():
        pytest.skip("labextension not built (jlpm build:prod)")
    tmp = Path(tempfile.mkdtemp(prefix="accel-browser-"))
    env = LabEnv(tmp)
    try:
        yield env
    finally:
        env.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def browser_context(lab_env):
    profile = lab_env.tmp / "chromium-profile"
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1400, "height": 850},
            accept_downloads=True,
        )
        try:
            yield ctx
        finally:
            ctx.close()


@pytest.fixture
def page(browser_context, lab_env):
    page = browser_context.new_page()
    page.set_default_timeout(30000)
    yield page
    page.close()
    # Each test starts with no kernels: the GPU gateway serves one kernel per device.
    for s in lab_env.lab.api("GET", "/api/sessions").json():
        lab_env.lab.api("DELETE", f"/api/sessions/{s['id']}")


def shot(page, name: str, doc: bool = False, **kw) -> Path:
    """Screenshot into tests/artifacts/; doc=True also refreshes docs/screenshots/ when
    UPDATE_DOC_SCREENSHOTS=1 (so an ordinary test run leaves the tree clean)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), **kw)
    if doc and os.environ.get("UPDATE_DOC_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / path.name)
    return path
