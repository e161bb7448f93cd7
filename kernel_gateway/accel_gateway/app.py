"""`jupyter accel-gateway`: a headless jupyter_server serving kernels of one accelerator host."""

from __future__ import annotations

import ipaddress
import socket

from jupyter_server.auth.identity import IdentityProvider
from jupyter_server.serverapp import ServerApp
from jupyter_server.serverapp import aliases as server_aliases
from jupyter_server.serverapp import flags as server_flags
from tornado.web import GZipContentEncoding
from traitlets import default

from ._version import __version__
from .allocation import DeviceAllocator
from .devices import DeviceSelector
from .devices.nvidia import NvidiaBackend
from .devices.tpu import TpuBackend
from .journal import OutputJournal
from .kernels import AccelKernelManager
from .limits import KernelLimits
from .metrics import MetricsSampler
from .mounts.manager import MountManager
from .runtime import RuntimeInfo

aliases = dict(server_aliases)
aliases.update(
    {
        "token": "IdentityProvider.token",
        "workspace": "ServerApp.root_dir",
    }
)


def is_loopback(ip: str) -> bool:
    if ip in ("localhost", ""):
        return ip == "localhost"
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(ip)).is_loopback
        except OSError:
            return False


class FastGzip(GZipContentEncoding):
    """gzip for clients that ask for it (JSON, text; tornado skips small and binary bodies)
    at level 1: a few ms of CPU per MB instead of level 6's tens, so it pays on any link a
    server extension asks it for (jupyterlab_accel asks only across a network)."""

    GZIP_LEVEL = 1


class AccelGatewayApp(ServerApp):
    """jupyter_server with only the accel_gateway extension: no UI, no other extensions."""

    name = "jupyter-accel-gateway"
    version = __version__
    description = "Serve Jupyter kernels, devices, metrics and mounts of this accelerator host."
    aliases = aliases
    flags = server_flags
    classes = [
        *ServerApp.classes,
        IdentityProvider,
        AccelKernelManager,
        DeviceSelector,
        NvidiaBackend,
        TpuBackend,
        DeviceAllocator,
        KernelLimits,
        MetricsSampler,
        RuntimeInfo,
        OutputJournal,
        MountManager,
    ]

    @default("open_browser")
    def _default_open_browser(self):
        return False

    @default("allow_root")
    def _default_allow_root(self):
        # Headless and token-protected; GPU hosts and containers commonly run as root.
        return True

    @default("ip")
    def _default_ip(self):
        return "127.0.0.1"

    @default("websocket_compression_options")
    def _default_websocket_compression_options(self):
        # Accept permessage-deflate where a client offers it (the server extension does for
        # runtimes across a network); zlib level 1: output at 2-2.7x a 50 Mbit/s link for
        # about 3 ms of CPU per MB (docs/benchmarks.md). None turns it off.
        return {"compression_level": 1, "mem_level": 8}

    @default("kernel_websocket_connection_class")
    def _default_kernel_websocket_connection_class(self):
        return "accel_gateway.websocket.NoDelayWebsocketConnection"

    @default("kernel_manager_class")
    def _default_kernel_manager_class(self):
        return "accel_gateway.kernels.AccelKernelManager"

    @default("reraise_server_extension_failures")
    def _default_reraise_server_extension_failures(self):
        # accel_gateway is this server's only extension: without it, it must not start.
        return True

    @default("terminals_enabled")
    def _default_terminals_enabled(self):
        # A terminal on the runtime, as Colab has; `--ServerApp.terminals_enabled=False` to refuse.
        try:
            import terminado  # noqa: F401
        except ImportError:
            return False
        return True

    def find_server_extensions(self) -> None:
        # Only our own extension (and the stock terminals one, with our terminal manager): never
        # JupyterLab's, nor jupyterlab_accel's, even when installed.
        self.jpserver_extensions = {"accel_gateway": True}
        if self.terminals_enabled:
            self.jpserver_extensions["jupyter_server_terminals"] = True
            terminals = self.config.TerminalsExtensionApp
            if "terminal_manager_class" not in terminals:
                terminals.terminal_manager_class = "accel_gateway.terminals.AccelTerminalManager"

    def initialize(
        self, argv=None, find_extensions=True, new_httpserver=True, starter_extension=None
    ):
        super().initialize(argv, find_extensions, new_httpserver, starter_extension)
        if self.web_app is not None:
            self.web_app.add_transform(FastGzip)
        token = self.identity_provider.token
        if not token:
            # The token is this API server's only protection (no login page, XSRF kept for
            # cookie clients): without it any web page in a local browser could start kernels.
            self.log.critical(
                "An empty token is refused: pass --token=SECRET or set JUPYTER_TOKEN, or give "
                "neither to have one generated and printed at start."
            )
            self.exit(1)
        if not is_loopback(self.ip) and self.identity_provider.token_generated:
            self.log.critical(
                "A token is required when listening beyond loopback (ip=%s): pass --token or set "
                "JUPYTER_TOKEN.",
                self.ip,
            )
            self.exit(1)

    async def cleanup_kernels(self) -> None:
        """Stock (every kernel stopped; a no-op without kernels), then the shutdown steps
        features registered to follow the kernels (Mount drive's flush): nothing writes after
        the last flush."""
        await super().cleanup_kernels()
        if isinstance(self.kernel_manager, AccelKernelManager):
            await self.kernel_manager.after_all_stopped()

    def start_app(self) -> None:
        super().start_app()
        if self.identity_provider.token_generated:
            # Only a generated token is printed: the operator has no other way to learn it.
            print(f"accel-gateway token: {self.identity_provider.token}", flush=True)


main = launch_new_instance = AccelGatewayApp.launch_instance
