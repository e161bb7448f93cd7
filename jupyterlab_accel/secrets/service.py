"""The server's side of the secrets channel: one websocket to each of our runtimes that lists
the "secrets" feature; each kernel read pushed on it is answered from the store when its
notebook holds a grant, else held as a pending request the user allows or denies in JupyterLab.

A runtime is only answered for its own kernels: the kernel id it names must map to a kernel this
server runs on that runtime, and the notebook is the path of that kernel's session here. Values
go only into the answer frame; nothing here logs a value or a request's answer.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from tornado.websocket import WebSocketClientConnection

from ..state import AccelState
from .store import SecretStore

PROMPT_TIMEOUT = 290.0  # seconds a read waits for the user (the gateway waits 300)
RELINK_DELAY = 3.0
REQUESTS_PATH = "/api/accel/secrets/requests"


class SecretsService:
    """The store, the links to runtimes and the reads waiting for the user."""

    def __init__(self, serverapp, registry):
        self.sa, self.registry, self.log = serverapp, registry, serverapp.log
        self.store = SecretStore(AccelState(parent=serverapp))
        self.pending: dict[str, dict] = {}  # id -> {id, runtime, kernel_id, notebook, name, ...}
        self._answers: dict[str, asyncio.Future] = {}
        self.links: dict[str, WebSocketClientConnection] = {}  # runtime name -> open websocket
        self._watcher: asyncio.Task | None = None

    def start(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.ensure_future(self._watch())

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        for conn in list(self.links.values()):
            conn.close()

    def linked(self, name: str) -> bool:
        return name in self.links

    async def _watch(self) -> None:
        tasks: dict[str, asyncio.Task] = {}
        while True:
            try:
                await self.registry.check_all(max_age=10)
            except Exception:  # noqa: BLE001 - health is the registry's business
                pass
            for rt in self.registry.all():
                features = (rt.info or {}).get("features") or []
                task = tasks.get(rt.name)
                if rt.healthy and "secrets" in features and (task is None or task.done()):
                    tasks[rt.name] = asyncio.ensure_future(self._link(rt))
            await asyncio.sleep(RELINK_DELAY)

    async def _link(self, rt) -> None:
        try:
            req = rt.request(REQUESTS_PATH, ws=True, timeout=10)
            conn = await rt.websocket_connect(req)
        except Exception as e:  # noqa: BLE001 - retried by the watcher
            self.log.debug("jupyterlab_accel: secrets link to %r failed: %s", rt.name, e)
            return
        self.links[rt.name] = conn
        try:
            while True:
                msg = await conn.read_message()
                if msg is None:
                    break
                asyncio.ensure_future(self._reply(rt, conn, msg))
        finally:
            if self.links.get(rt.name) is conn:
                del self.links[rt.name]

    async def _reply(self, rt, conn, message) -> None:
        try:
            req = json.loads(message)
            rid, remote_kid, name = req["id"], req["kernel_id"], req["name"]
        except (ValueError, KeyError, TypeError):
            return
        try:
            answer = await self.resolve(rt.name, str(remote_kid), str(name))
        except Exception as e:  # noqa: BLE001 - the kernel gets the reason
            answer = {"error": "SecretsError", "message": f"secret request failed: {e}"}
        try:
            await conn.write_message(json.dumps({"id": rid, **answer}))
        except Exception:  # noqa: BLE001 - the link went; the gateway tells the kernel
            pass

    def local_kernel(self, runtime: str, remote_kid: str) -> str | None:
        """This server's id of the kernel `remote_kid` on `runtime`, if it runs one."""
        remote = getattr(self.sa.kernel_manager, "remote_kernels", None)
        for kid, km in (remote() if callable(remote) else {}).items():
            if km.rt.name == runtime and (km.remote_id or km.kernel_id) == remote_kid:
                return kid
        return None

    async def notebook_of(self, kernel_id: str) -> str | None:
        for session in await self.sa.session_manager.list_sessions():
            if (session.get("kernel") or {}).get("id") == kernel_id:
                return session.get("path")
        return None

    async def resolve(self, runtime: str, remote_kid: str, name: str) -> dict:
        kid = self.local_kernel(runtime, remote_kid)
        if kid is None:
            return {
                "error": "SecretsError",
                "reason": "not_my_kernel",  # the gateway then asks its other servers
                "message": "not a kernel of this JupyterLab server",
            }
        notebook = await self.notebook_of(kid)
        if not notebook:
            return {
                "error": "NotebookAccessError",
                "message": "this kernel has no notebook: secrets are granted per notebook",
            }
        if not self.store.has(name):
            return {
                "error": "SecretNotFoundError",
                "message": f"no secret named {name!r}: add it in JupyterLab's Secrets panel",
            }
        if not self.store.granted(name, notebook):
            allowed = await self.ask(runtime, kid, notebook, name)
            if not allowed:
                return {
                    "error": "NotebookAccessError",
                    "message": f"notebook {notebook!r} was not granted access to secret {name!r}",
                }
        if not self.store.has(name):  # deleted while the user was asked
            return {"error": "SecretNotFoundError", "message": f"no secret named {name!r}"}
        return {"value": self.store.value(name)}

    async def ask(self, runtime: str, kernel_id: str, notebook: str, name: str) -> bool:
        """Hold the read until the user allows or denies it (False on timeout)."""
        rid = uuid.uuid4().hex
        self.pending[rid] = {
            "id": rid,
            "runtime": runtime,
            "kernel_id": kernel_id,
            "notebook": notebook,
            "name": name,
            "created": time.time(),
        }
        fut = self._answers[rid] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(fut, PROMPT_TIMEOUT)
        except asyncio.TimeoutError:
            return False
        finally:
            self.pending.pop(rid, None)
            self._answers.pop(rid, None)

    def decide(self, rid: str, allow: bool) -> bool:
        """The user's answer to a pending read; allowing grants the notebook. False: no such."""
        req = self.pending.get(rid)
        fut = self._answers.get(rid)
        if req is None or fut is None or fut.done():
            return False
        if allow and self.store.has(req["name"]):
            self.store.grant(req["name"], req["notebook"])
        fut.set_result(bool(allow))
        return True


def service_of(handler) -> SecretsService:
    """The server's one SecretsService (built and started on first use by any handler)."""
    settings = handler.settings
    service = settings.get("accel_secrets")
    if service is None:
        service = settings["accel_secrets"] = SecretsService(
            settings["serverapp"], settings["accel_registry"]
        )
    service.start()
    return service
