"""GET/POST /accel/runtimes, GET/DELETE /accel/runtimes/{name}: tokens never leave the server."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..providers.base import ProviderError
from ..runtime import RuntimeError_
from ..runtimes import RuntimeNotAllowed
from .base import AccelHandler


class RuntimesHandler(AccelHandler):
    @web.authenticated
    @authorized
    async def get(self):
        rts = await self.registry.check_all()
        self.write_json([rt.public_model() for rt in rts])

    @web.authenticated
    @authorized
    async def post(self):
        if not self.registry.allow_user_runtimes:
            raise web.HTTPError(
                403,
                "adding runtimes is turned off on this server "
                "(RuntimeRegistry.allow_user_runtimes)",
            )
        body = self.json_body()
        if isinstance(body, dict) and not isinstance(body.get("name"), (str, type(None))):
            raise web.HTTPError(400, "name must be a string")
        if isinstance(body, dict) and self.registry.get(body.get("name")) is not None:
            raise web.HTTPError(409, f"a runtime named {body.get('name')!r} already exists")
        try:
            rt = self.registry.add_user_runtime(body)
        except RuntimeNotAllowed as e:
            raise web.HTTPError(403, str(e)) from None
        except (RuntimeError_, TypeError) as e:
            raise web.HTTPError(400, str(e)) from None
        except OSError as e:  # state folder not writable or full: the runtime was not added
            raise web.HTTPError(507, f"could not save the runtime: {e.strerror or e}") from None
        await self.registry.check(rt, 0)
        self.write_json(rt.public_model(), 201)


class RuntimeHandler(AccelHandler):
    @web.authenticated
    @authorized
    async def get(self, name):
        rt = await self.runtime(name)
        await self.registry.check(rt)
        self.write_json(rt.public_model())

    @web.authenticated
    @authorized
    async def delete(self, name):
        rt = await self.runtime(name)
        if not rt.removable:
            raise web.HTTPError(
                403,
                f"runtime {name!r} comes from the server configuration; it cannot be removed here",
            )
        km = self.kernel_manager
        if hasattr(km, "shutdown_runtime_kernels"):
            await km.shutdown_runtime_kernels(name)
        provider = getattr(rt, "provider", None)  # SSH host, ...: stop its gateway there too
        if provider is not None:
            await stop_provider(provider, self.log)
        try:
            self.registry.remove_user_runtime(name)
        except OSError as e:
            raise web.HTTPError(507, f"could not save the change: {e.strerror or e}") from None
        self.set_status(204)
        self.finish()


async def stop_provider(provider, log) -> None:
    """Stop a provider's runtime before it is forgotten; a host that cannot be reached does
    not keep the runtime listed (logged)."""
    try:
        await provider.stop()
    except ProviderError as e:
        log.warning(
            "jupyterlab_accel: runtime %r deleted; stopping it failed: %s", provider.name, e
        )
