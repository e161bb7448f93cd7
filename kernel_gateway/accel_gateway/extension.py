"""Wires the gateway's managers into jupyter_server and registers the /api/accel handlers.

Each feature is one setup function in FEATURE_SETUPS, `setup(ctx: GatewayContext) -> None`: it
appends its (pattern, handler, kwargs) rules to `ctx.handlers` and its name to `ctx.features`
(what GET /api/accel/runtime lists). Adding a feature is one line here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jupyter_server.utils import url_path_join
from traitlets.utils.importstring import import_item

from .allocation import DeviceAllocator
from .devices import DeviceBackend, DeviceSelector
from .limits import Culler, KernelLimits
from .metrics import MetricsSampler
from .runtime import RuntimeInfo

FEATURE_SETUPS = [
    "accel_gateway.handlers.setup_core",
    "accel_gateway.handlers.setup_metrics",
    "accel_gateway.mounts.setup_mounts",
    "accel_gateway.journal_handlers.setup_journal",
    "accel_gateway.filesync.setup_filesync",
]


@dataclass
class GatewayContext:
    """The managers of one gateway, handed to every feature setup and handler."""

    serverapp: object
    kernel_manager: object
    backend: DeviceBackend
    allocator: DeviceAllocator
    limits: KernelLimits
    sampler: MetricsSampler
    runtime: RuntimeInfo
    workspace: str
    journal: object = None  # OutputJournal, set by setup_journal
    features: list = field(default_factory=list)
    handlers: list = field(default_factory=list)


def build_context(serverapp) -> GatewayContext:
    km = serverapp.kernel_manager
    backend = DeviceSelector(parent=serverapp).select()
    allocator = DeviceAllocator(
        [d.index for d in backend.devices()], backend.visibility_env, parent=serverapp
    )
    limits = KernelLimits(parent=serverapp)
    workspace = serverapp.root_dir
    if hasattr(km, "allocator"):  # AccelKernelManager; a stock one just runs kernels
        km.allocator, km.limits, km.culler = allocator, limits, Culler(limits, km)
    return GatewayContext(
        serverapp=serverapp,
        kernel_manager=km,
        backend=backend,
        allocator=allocator,
        limits=limits,
        sampler=MetricsSampler(backend, km, workspace, parent=serverapp),
        runtime=RuntimeInfo(parent=serverapp),
        workspace=workspace,
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
