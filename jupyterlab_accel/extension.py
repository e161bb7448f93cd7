"""Server extension entry point: takes the runtime registry from our kernel spec manager,
starts the embedded runtime, registers the /accel handlers, stops the runtime at shutdown."""

from __future__ import annotations

from jupyter_core.paths import jupyter_config_path
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.extension.config import ExtensionConfigManager
from tornado.ioloop import IOLoop

from .handlers import handlers
from .metrics import MetricsHub
from .runtimes import RuntimeRegistry
from .secrets import SecretsService

# The routing classes, as shipped in jupyter-config/server-config/jupyterlab_accel.json.
SERVER_CLASSES = {
    "kernel_spec_manager_class": "jupyterlab_accel.kernelspecs.AccelKernelSpecManager",
    "kernel_manager_class": "jupyterlab_accel.kernels.AccelMappingKernelManager",
    "kernel_websocket_connection_class": "jupyterlab_accel.relay.AccelWebsocketConnection",
    "session_manager_class": "jupyterlab_accel.sessions.AccelSessionManager",
}


def apply_server_classes(serverapp, log) -> None:
    """Set our manager classes on the ServerApp before it builds its managers.

    jupyter_server reads only `jpserver_extensions` from jupyter_server_config.d files, so the
    classes in our shipped file are applied here (at link time, before init_configurables).
    Precedence: the user's own config (jupyter_server_config.py, command line) > the shipped
    config.d file > the defaults above."""
    shipped = (
        ExtensionConfigManager(read_config_path=jupyter_config_path())
        .get("jupyter_server_config")
        .get("ServerApp", {})
    )
    user = serverapp.config.get("ServerApp", {})
    for key, fallback in SERVER_CLASSES.items():
        if key in user:
            log.info("jupyterlab_accel: keeping configured ServerApp.%s = %s", key, user[key])
            continue
        setattr(serverapp, key, shipped.get(key, fallback))


class AccelExtension(ExtensionApp):
    """jupyterlab_accel: many runtimes in one server, each kernel routed to its own."""

    name = "jupyterlab_accel"
    load_other_extensions = True

    def _link_jupyter_server_extension(self, serverapp):
        super()._link_jupyter_server_extension(serverapp)
        apply_server_classes(serverapp, self.log)

    def initialize_settings(self):
        sa = self.serverapp
        # Our kernel spec manager owns the registry (jupyter_server builds it first); without
        # it (classes overridden elsewhere) the REST API still works on a registry of its own.
        registry = getattr(sa.kernel_spec_manager, "registry", None)
        if registry is None:
            registry = RuntimeRegistry(parent=sa)
            self.log.warning(
                "jupyterlab_accel: kernel_spec_manager_class is not "
                "AccelKernelSpecManager: remote kernels will not be routed"
            )
        self.registry = registry
        self.hub = MetricsHub()
        registry.start_embedded(sa.root_dir)
        if hasattr(sa.kernel_spec_manager, "default_kernel_name"):  # new notebooks: a runtime
            km = sa.kernel_manager
            km.default_kernel_name = sa.kernel_spec_manager.default_kernel_name(
                km.default_kernel_name
            )
        self.settings.update({"accel_registry": registry, "accel_metrics_hub": self.hub})
        self.secrets = SecretsService(sa, registry)  # links to runtimes once the loop runs
        self.settings["accel_secrets"] = self.secrets
        IOLoop.current().add_callback(self.secrets.start)
        self.file_sync = getattr(sa.kernel_manager, "file_sync", None)
        self.settings["accel_file_sync"] = self.file_sync
        names = ", ".join(rt.name for rt in registry.all()) or "none"
        self.log.info("jupyterlab_accel: runtimes: %s", names)

    def initialize_handlers(self):
        self.handlers.extend(handlers)

    async def stop_extension(self):
        if self.file_sync is not None:
            await self.file_sync.stop()
        self.hub.close()
        self.secrets.stop()
        self.registry.stop_embedded()
        self.registry.close()
