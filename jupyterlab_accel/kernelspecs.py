"""Kernel specs of this server plus those of every healthy runtime, namespaced reversibly:
`accel--{runtime}--{spec}`, display names that say where they run, `metadata.accel`."""

from __future__ import annotations

import asyncio
import copy

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_server.utils import url_path_join
from tornado import web
from traitlets import Bool, Instance, default

from .names import parse_name, remote_name
from .runtime import accelerator_label
from .runtimes import RuntimeRegistry


def namespaced_model(rt, spec_name: str, model: dict, base_url: str) -> dict:
    """A runtime's kernelspec model rewritten for this server."""
    name = remote_name(rt.name, spec_name)
    spec = copy.deepcopy(model.get("spec") or {})
    where = " · ".join(x for x in (accelerator_label(rt.info), rt.display_name) if x)
    spec["display_name"] = f"{spec.get('display_name') or spec_name} · {where}"
    metadata = spec.setdefault("metadata", {})
    info = rt.info or {}
    metadata["accel"] = {
        "runtime": rt.name,
        "runtime_display_name": rt.display_name,
        "accelerator": info.get("accelerator"),
        "shape": info.get("shape"),
        "spec": spec_name,
    }
    resources = {
        key: url_path_join(base_url, "kernelspecs", name, url.rsplit("/", 1)[-1])
        for key, url in (model.get("resources") or {}).items()
        if isinstance(url, str)
    }
    return {"name": name, "spec": spec, "resources": resources}


class AccelKernelSpecManager(KernelSpecManager):
    """This server's own kernel specs, plus namespaced specs of every healthy runtime."""

    registry = Instance(RuntimeRegistry)

    @default("registry")
    def _default_registry(self):
        # Built here because jupyter_server creates this manager first; the kernel manager and
        # the extension take it from here (passed along, never a global).
        return RuntimeRegistry(parent=self)

    show_local_specs = Bool(
        False,
        config=True,
        help="List this server's own kernel specs while the embedded runtime ('This machine') "
        "serves kernels. Off: one card per runtime in the Launcher, and new notebooks run on "
        "the embedded runtime (docs/frontend.md); kernels asked for by a local name still start.",
    )

    @property
    def base_url(self) -> str:
        return getattr(self.parent, "base_url", "/") or "/"

    def default_kernel_name(self, local_default: str) -> str:
        """The default kernel of new notebooks: the embedded runtime's twin of the local
        default unless local specs are shown (or there is no embedded runtime)."""
        embedded = self.registry.embedded
        if self.show_local_specs or not embedded.enabled or parse_name(local_default):
            return local_default
        return remote_name(embedded.name, local_default)

    async def get_all_specs(self):
        local = super().get_all_specs()
        rts = await self.registry.check_all()
        # The embedded runtime serves this machine's kernels with runtime features: list those
        # instead of the same kernels without (back as soon as it is down).
        if not self.show_local_specs and any(rt.embedded and rt.healthy for rt in rts):
            local = {}
        merged = dict(local)
        for rt in rts:
            if not rt.healthy:
                continue
            for spec_name, model in rt.specs.items():
                if isinstance(model, dict):
                    merged[remote_name(rt.name, spec_name)] = namespaced_model(
                        rt, spec_name, model, self.base_url
                    )
        return merged

    def get_kernel_spec(self, kernel_name, *args, **kw):
        """Sync, as jupyter_client expects: remote specs come from the last health check."""
        parsed = parse_name(kernel_name)
        if parsed is None:
            return super().get_kernel_spec(kernel_name, *args, **kw)
        rt = self.registry.get(parsed[0])
        if rt is None or parsed[1] not in rt.specs:
            raise NoSuchKernel(kernel_name)
        return namespaced_model(rt, parsed[1], rt.specs[parsed[1]], self.base_url)

    async def get_kernel_spec_resource(self, kernel_name, path):
        """Logos of remote specs, fetched from their runtime."""
        parsed = parse_name(kernel_name)
        if parsed is None:
            return None
        rt = self.registry.get(parsed[0])
        if rt is None:
            raise web.HTTPError(404, f"no runtime {parsed[0]!r}")
        try:
            resp = await rt.fetch(
                self.registry.http,
                f"/kernelspecs/{parsed[1]}/{path}",
                timeout=self.registry.health_timeout * 2,
            )
        except (OSError, asyncio.TimeoutError):
            return None
        return resp.body if resp.code == 200 else None
