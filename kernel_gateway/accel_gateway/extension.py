"""Wires the gateway's managers into jupyter_server and registers the /api/accel handlers.

Each feature is one setup function in FEATURE_SETUPS, `setup(ctx: GatewayContext) -> None`: it
appends its (pattern, handler, kwargs) rules to `ctx.handlers` and its name to `ctx.features`
(what GET /api/accel/runtime lists). Adding a feature is one line here. The managers come from
the kernel manager (typed traits built from configuration); a feature gives kernels variables
through `ctx.kernel_env` and runs shutdown work after the kernels through
`ctx.after_kernels_stopped(hook)` (AccelGatewayApp.cleanup_kernels runs the hooks after stock
stopped the kernels).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from jupyter_server.serverapp import ServerApp
from jupyter_server.utils import url_path_join
from traitlets.utils.importstring import import_item

from .allocation import DeviceAllocator
from .devices import DeviceBackend
from .journal import OutputJournal
from .kernels import AccelKernelManager
from .limits import KernelLimits
from .metrics import MetricsSampler
from .runtime import RuntimeInfo

FEATURE_SETUPS = [
    "accel_gateway.handlers.setup_core",
    "accel_gateway.handlers.setup_metrics",
    "accel_gateway.mounts.setup_mounts",
    "accel_gateway.journal_handlers.setup_journal",
    "accel_gateway.filesync.setup_filesync",
    "accel_gateway.uploads.setup_uploads",
    "accel_gateway.terminals.setup_terminals",
    "accel_gateway.secrets_channel.setup_secrets",
]


@dataclass
class GatewayContext:
    """The managers of one gateway, handed to every feature setup and handler."""

    serverapp: ServerApp
    kernel_manager: AccelKernelManager
    backend: DeviceBackend
    allocator: DeviceAllocator
    limits: KernelLimits
    sampler: MetricsSampler
    runtime: RuntimeInfo
    workspace: str
    journal: OutputJournal
    features: list = field(default_factory=list)
    handlers: list = field(default_factory=list)

    @property
    def kernel_env(self) -> dict[str, str]:
        """Variables every kernel gets: features add theirs here, never to os.environ."""
        return self.kernel_manager.kernel_env

    def after_kernels_stopped(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` at server shutdown once every kernel has stopped."""
        self.kernel_manager.after_shutdown_all.append(hook)


def build_context(serverapp: ServerApp) -> GatewayContext:
    km = serverapp.kernel_manager
    if not isinstance(km, AccelKernelManager):
        raise TypeError(
            "accel_gateway needs ServerApp.kernel_manager_class = "
            f"accel_gateway.kernels.AccelKernelManager (got {type(km).__name__})"
        )
    workspace = serverapp.root_dir
    return GatewayContext(
        serverapp=serverapp,
        kernel_manager=km,
        backend=km.backend,
        allocator=km.allocator,
        limits=km.limits,
        sampler=MetricsSampler(km.backend, km, workspace, parent=serverapp),
        runtime=RuntimeInfo(parent=serverapp),
        workspace=workspace,
        journal=km.journal,
    )


def _load_jupyter_server_extension(serverapp):
    ctx = build_context(serverapp)
    for setup in FEATURE_SETUPS:
        import_item(setup)(ctx)
    base_url = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(
        ".*$", [(url_path_join(base_url, pattern), *rest) for pattern, *rest in ctx.handlers]
    )
    serverapp.log.info(
        "accel_gateway: %s, %d device(s), features %s",
        ctx.backend.accelerator,
        len(ctx.backend.devices()),
        ", ".join(ctx.features),
    )
