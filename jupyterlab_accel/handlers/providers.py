"""/accel/providers/ssh: runtimes on SSH hosts (add, connect/accept a host key, delete).

Thin over `providers.ssh.SSHProvider`: connecting runs in the background and its progress is
the runtime's `provider` field (GET /accel/runtimes/{name}); `?wait=S` waits up to S seconds
for ready or a failure. Passphrases are used for this server's connections only, never stored."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..providers.base import ProviderError, State
from ..providers.runtime import ProvidedRuntime, wait_state
from ..providers.ssh import SSHProvider, ssh_config_hosts
from ..runtime import RuntimeError_, check_name
from .base import AccelHandler

MAX_WAIT = 300


class _SSHHandler(AccelHandler):
    def wait_seconds(self) -> float:
        raw = self.get_query_argument("wait", "0")
        try:
            wait = float(raw)
        except ValueError:
            raise web.HTTPError(400, f"wait must be a number of seconds: {raw!r}") from None
        if not 0 <= wait <= MAX_WAIT:
            raise web.HTTPError(400, f"wait must be from 0 to {MAX_WAIT} seconds")
        return wait

    def ssh_runtime(self, name: str) -> ProvidedRuntime:
        rt = self.registry.get(name)
        if not isinstance(rt, ProvidedRuntime) or not isinstance(rt.provider, SSHProvider):
            raise web.HTTPError(404, f"no SSH runtime named {name!r}")
        return rt

    @staticmethod
    def passphrase(body: dict) -> str | None:
        value = body.get("passphrase")
        if value is not None and (not isinstance(value, str) or len(value) > 1024):
            raise web.HTTPError(400, "passphrase must be a string of at most 1024 characters")
        return value or None

    async def answer(self, rt: ProvidedRuntime, wait: float, status: int) -> None:
        if wait:
            await wait_state(rt.provider, wait)
        self.write_json(rt.public_model(), status)


class SSHRuntimesHandler(_SSHHandler):
    @web.authenticated
    @authorized
    async def post(self):
        """{name, host, python?, display_name?, passphrase?} -> 202, connecting."""
        wait = self.wait_seconds()
        body = self.json_body()
        if not isinstance(body, dict):
            raise web.HTTPError(400, "expected a JSON object {name, host, python?, display_name?}")
        unknown = set(body) - {"name", "host", "python", "display_name", "passphrase"}
        if unknown:
            raise web.HTTPError(400, f"unknown keys: {sorted(unknown)}")
        if not getattr(self.registry, "allow_user_runtimes", True):
            raise web.HTTPError(403, "adding runtimes is turned off on this server")
        try:
            name = check_name(body.get("name"))
            if name == "hosts":  # /accel/providers/ssh/hosts is the alias list
                raise RuntimeError_("the name 'hosts' is reserved")
            if self.registry.get(name) is not None:
                raise web.HTTPError(409, f"a runtime named {name!r} already exists")
            provider = SSHProvider(
                name, body.get("host"), python=body.get("python"), parent=self.registry
            )
            rt = ProvidedRuntime(provider, display_name=body.get("display_name"))
        except (RuntimeError_, ProviderError) as e:
            raise web.HTTPError(400, str(e)) from None
        passphrase = self.passphrase(body)
        self.registry._add(rt)
        provider.on_change(self._save_when_ready)
        try:
            self.registry._save()
        except OSError as e:
            self.registry.remove_user_runtime(name)
            raise web.HTTPError(507, f"could not save the runtime: {e.strerror or e}") from None
        provider.start_soon(passphrase)
        await self.answer(rt, wait, 202)

    def _save_when_ready(self, provider) -> None:
        if provider.state is State.READY:
            registry = self.settings["accel_registry"]
            try:
                registry._save()  # the token and port of a started gateway, for re-attach
            except OSError as e:
                self.log.error("jupyterlab_accel: could not save runtime %r: %s", provider.name, e)


class SSHHostsHandler(_SSHHandler):
    @web.authenticated
    @authorized
    async def get(self):
        """Host aliases of the ssh config files (for the Connect dialog's list)."""
        probe = SSHProvider("hosts", "hosts", parent=self.registry)  # reads config only
        self.write_json({"hosts": ssh_config_hosts(probe.ssh_config)})


class SSHConnectHandler(_SSHHandler):
    @web.authenticated
    @authorized
    async def post(self, name):
        """{passphrase?, accept_fingerprint?} -> 202: (re)connect, trusting a shown key."""
        wait = self.wait_seconds()
        rt = self.ssh_runtime(name)
        body = self.json_body() or {}
        if not isinstance(body, dict) or set(body) - {"passphrase", "accept_fingerprint"}:
            raise web.HTTPError(400, "expected a JSON object {passphrase?, accept_fingerprint?}")
        passphrase = self.passphrase(body)
        fingerprint = body.get("accept_fingerprint")
        if fingerprint is not None:
            if not isinstance(fingerprint, str):
                raise web.HTTPError(400, "accept_fingerprint must be a string")
            try:
                rt.provider.accept_host_key(fingerprint)
            except ProviderError as e:
                raise web.HTTPError(409, str(e)) from None
        if rt.provider.state is not State.READY:
            rt.provider.start_soon(passphrase)
        await self.answer(rt, wait, 202)


class SSHRuntimeHandler(_SSHHandler):
    @web.authenticated
    @authorized
    async def delete(self, name):
        """Disconnect and delete: stop the gateway on the host (kernels with it), forget it."""
        rt = self.ssh_runtime(name)
        km = self.kernel_manager
        if hasattr(km, "shutdown_runtime_kernels") and rt.provider.state is State.READY:
            try:
                await km.shutdown_runtime_kernels(name)
            except Exception as e:  # the gateway stop below ends them anyway
                self.log.warning("jupyterlab_accel: kernels of %r: %s", name, e)
        warning = None
        try:
            await rt.provider.stop()
        except ProviderError as e:
            warning = f"the runtime was deleted, but stopping its gateway failed: {e}"
        try:
            self.registry.remove_user_runtime(name)
        except OSError as e:
            raise web.HTTPError(507, f"could not save the change: {e.strerror or e}") from None
        if warning:
            self.write_json({"message": warning}, 200)
        else:
            self.set_status(204)
            self.finish()
