"""Routing logic apart from HTTP: names, URLs, labels, cost, registry persistence."""

import json
import os
import stat
from datetime import datetime, timedelta, timezone

import pytest
from traitlets.config import Config

from jupyterlab_accel.kernelspecs import namespaced_model
from jupyterlab_accel.names import parse_name, remote_name
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


# -- jupyter_server internals: none in use; the hooks we override are checked -----------------
ROUTING_MODULES = [
    "jupyterlab_accel/kernels.py",
    "jupyterlab_accel/remote_kernel.py",
    "jupyterlab_accel/relay.py",
    "jupyterlab_accel/reconnect.py",
    "jupyterlab_accel/kernelspecs.py",
    "jupyterlab_accel/sessions.py",
    "jupyterlab_accel/names.py",
    "jupyterlab_accel/handlers/sessions.py",
    "jupyterlab_accel/handlers/api_sessions.py",
    "kernel_gateway/accel_gateway/kernels.py",
    "kernel_gateway/accel_gateway/app.py",
    "kernel_gateway/accel_gateway/extension.py",
    "kernel_gateway/accel_gateway/activity.py",
]
# Private attributes of jupyter_server/jupyter_client objects that our code may use, each named
# with its reason in docs/architecture.md ("jupyter_server internals"). Empty: none is used.
ALLOWED_PRIVATE: set[str] = set()


def _private_upstream_names() -> set[str]:
    """Private names jupyter_server's and jupyter_client's kernel managers, websocket
    connections, session manager and ServerApp define."""
    from jupyter_client.manager import KernelManager
    from jupyter_client.multikernelmanager import MultiKernelManager
    from jupyter_server.serverapp import ServerApp
    from jupyter_server.services.kernels.connection.channels import (
        ZMQChannelsWebsocketConnection,
    )
    from jupyter_server.services.kernels.kernelmanager import (
        AsyncMappingKernelManager,
        ServerKernelManager,
    )
    from jupyter_server.services.sessions.sessionmanager import SessionManager

    names = set()
    for cls in (
        MultiKernelManager,
        AsyncMappingKernelManager,
        KernelManager,
        ServerKernelManager,
        ZMQChannelsWebsocketConnection,
        SessionManager,
        ServerApp,
    ):
        for klass in cls.__mro__:
            names |= {n for n in vars(klass) if n.startswith("_") and not n.startswith("__")}
    # attributes stock code sets on kernel managers at run time
    names |= {"_activity_stream", "_pending_restart_cleanup", "_kernel_connections"}
    return names


def test_no_private_jupyter_server_attributes_in_routing():
    """Fails when routing code starts using a private attribute of jupyter_server (or one in
    ALLOWED_PRIVATE disappears upstream), so an upgrade cannot break it silently."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    upstream = _private_upstream_names()
    used = {}
    for rel in ROUTING_MODULES:
        tree = ast.parse((root / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in upstream:
                used.setdefault(node.attr, []).append(f"{rel}:{node.lineno}")
            module = getattr(node, "module", None) or ""
            if (
                isinstance(node, ast.ImportFrom)
                and module.startswith("jupyter")
                and any(part.startswith("_") for part in module.split("."))
            ):
                used.setdefault(node.module, []).append(f"{rel}:{node.lineno}")
    unexpected = {k: v for k, v in used.items() if k not in ALLOWED_PRIVATE}
    assert not unexpected, f"private jupyter_server attributes in use: {unexpected}"
    assert ALLOWED_PRIVATE <= upstream, "an allowed private attribute is gone upstream"


def test_stock_hooks_the_routing_overrides_still_exist():
    """The public hooks AccelMappingKernelManager relies on: a remote kernel gets its manager
    through pre_start_kernel, which the stock start path calls with kwargs it may change."""
    import inspect

    from jupyter_client.multikernelmanager import MultiKernelManager
    from jupyter_server.services.kernels.connection.base import BaseKernelWebsocketConnection
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    assert list(inspect.signature(MultiKernelManager.pre_start_kernel).parameters) == [
        "self",
        "kernel_name",
        "kwargs",
    ]
    start = inspect.getsource(MultiKernelManager._async_start_kernel)
    assert "self.pre_start_kernel(kernel_name, kwargs)" in start
    for hook in ("start_watching_activity", "cull_kernels", "shutdown_all", "kernel_model"):
        assert callable(getattr(AsyncMappingKernelManager, hook))
    for hook in ("prepare", "connect", "disconnect", "handle_incoming_message"):
        assert hasattr(BaseKernelWebsocketConnection, hook) or hook == "prepare"


def test_connection_class_is_chosen_per_kernel():
    from jupyter_server.services.kernels.connection.base import BaseKernelWebsocketConnection

    from jupyterlab_accel.relay import (
        AccelWebsocketConnection,
        LocalKernelWebsocketConnection,
        RemoteKernelWebsocketConnection,
    )
    from jupyterlab_accel.remote_kernel import RemoteKernelManager

    assert issubclass(AccelWebsocketConnection, BaseKernelWebsocketConnection)
    rt = Runtime("a", "http://127.0.0.1:9")
    remote = RemoteKernelManager(kernel_name="accel--a--python3", runtime=rt, remote_spec="python3")
    conn = AccelWebsocketConnection(parent=remote)
    assert type(conn) is RemoteKernelWebsocketConnection
    assert not isinstance(conn, LocalKernelWebsocketConnection)

    from jupyter_server.services.kernels.kernelmanager import ServerKernelManager

    local = AccelWebsocketConnection(parent=ServerKernelManager())
    assert type(local) is LocalKernelWebsocketConnection


def test_relay_options_keep_their_config_section():
    from jupyterlab_accel.relay import RemoteKernelWebsocketConnection
    from jupyterlab_accel.remote_kernel import RemoteKernelManager

    cfg = Config({"AccelWebsocketConnection": {"lost_after": 7.5}})
    rt = Runtime("a", "http://127.0.0.1:9")
    km = RemoteKernelManager(kernel_name="accel--a--x", runtime=rt, remote_spec="x")
    assert RemoteKernelWebsocketConnection(parent=km, config=cfg).lost_after == 7.5


def test_upstream_refusal_keeps_status_message_and_reason():
    from types import SimpleNamespace

    from jupyterlab_accel.remote_kernel import upstream_error

    body = json.dumps({"message": "No free device on this runtime.", "reason": "no_free_device"})
    e = upstream_error(SimpleNamespace(code=503, body=body.encode(), reason="x"), "start")
    assert (e.status_code, e.log_message, e.reason) == (
        503,
        "No free device on this runtime.",
        "no_free_device",
    )
    garbage = upstream_error(SimpleNamespace(code=599, body=b"[]", reason="Unknown"), "start")
    assert garbage.status_code == 502 and garbage.reason is None
