"""Routing logic apart from HTTP: names, URLs, labels, cost, registry persistence."""

import json
import os
import stat
from datetime import datetime, timedelta, timezone

import pytest
from traitlets.config import Config

from jupyterlab_accel.kernelspecs import namespaced_model, parse_name, remote_name
from jupyterlab_accel.overview import cost
from jupyterlab_accel.runtime import Runtime, RuntimeError_, accelerator_label, check_url
from jupyterlab_accel.runtimes import RuntimeRegistry


@pytest.mark.parametrize(
    "rt,spec", [("a", "python3"), ("lab-box", "python3"), ("x1", "my--odd--spec"), ("gpu-2", "ir")]
)
def test_names_round_trip(rt, spec):
    assert parse_name(remote_name(rt, spec)) == (rt, spec)


@pytest.mark.parametrize("name", ["python3", "accel--", "accel--x", "accel----spec", ""])
def test_local_names_are_not_remote(name):
    assert parse_name(name) is None


@pytest.mark.parametrize("bad", ["A", "a--b", "-a", "a-", "a_b", "a b", "x" * 64, 5, None])
def test_bad_runtime_names(bad):
    with pytest.raises(RuntimeError_):
        Runtime(bad, "http://127.0.0.1:1")


def test_urls():
    assert check_url("https://h:8899/base/") == "https://h:8899/base"
    for bad in ("ftp://h", "http://", "http://u:p@h", "h:80", 3):
        with pytest.raises(RuntimeError_):
            check_url(bad)


def test_accelerator_labels_and_display_name():
    assert accelerator_label(None) is None
    assert accelerator_label({"accelerator": "none"}) == "CPU"
    h100 = {
        "accelerator": "gpu",
        "shape": "standard",
        "devices": [{"name": "NVIDIA H100 80GB HBM3"}],
    }
    assert accelerator_label(h100) == "GPU H100"
    assert (
        accelerator_label({"accelerator": "gpu", "devices": [{"name": "NVIDIA A100"}] * 2})
        == "GPU 2×A100"
    )
    rt = Runtime("lab-box", "http://127.0.0.1:1")
    rt.info = h100
    m = namespaced_model(
        rt,
        "python3",
        {
            "spec": {"display_name": "Python 3", "metadata": {}},
            "resources": {"logo-64x64": "/kernelspecs/python3/logo-64x64.png"},
        },
        "/",
    )
    assert m["name"] == "accel--lab-box--python3"
    assert m["spec"]["display_name"] == "Python 3 · GPU H100 · lab-box"
    assert m["spec"]["metadata"]["accel"]["accelerator"] == "gpu"
    assert m["resources"]["logo-64x64"] == "/kernelspecs/accel--lab-box--python3/logo-64x64.png"


def test_cost():
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert cost(2.0, start.isoformat(), start + timedelta(minutes=90)) == 3.0
    assert cost(None, start.isoformat()) is None and cost(1.0, None) is None


def test_token_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("T_ENV", "from-env")
    f = tmp_path / "tok"
    f.write_text("from-file\n")
    assert Runtime("a", "http://h:1", token_env="T_ENV").headers() == {
        "Authorization": "token from-env"
    }
    assert Runtime("a", "http://h:1", token_file=str(f)).headers() == {
        "Authorization": "token from-file"
    }
    rt = Runtime("a", "http://h:1", token="secret")
    assert "secret" not in json.dumps(rt.public_model())


def test_registry_persists_user_runtimes_0600(tmp_path):
    cfg = Config(
        {
            "AccelState": {"state_dir": str(tmp_path)},
            "EmbeddedGateway": {"enabled": False},
            "RuntimeRegistry": {
                "runtimes": [
                    {"name": "conf", "url": "http://h:1"},
                    {"name": "bad name", "url": "http://h:1"},
                ]
            },
        }
    )
    reg = RuntimeRegistry(config=cfg)
    assert [r.name for r in reg.all()] == ["conf"]  # the invalid one is logged and skipped
    reg.add_user_runtime({"name": "mine", "url": "http://h:2", "token": "tok"})
    path = tmp_path / "runtimes.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = RuntimeRegistry(config=cfg)
    assert again.get("mine").token() == "tok" and again.get("mine").removable
    with pytest.raises(RuntimeError_):
        again.remove_user_runtime("conf")
    again.remove_user_runtime("mine")
    assert json.loads(path.read_text()) == []
