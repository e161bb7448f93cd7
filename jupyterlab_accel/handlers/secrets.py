"""/accel/secrets: the user's secrets (names and grants, never values), grants per notebook,
the reads waiting for the user's Allow/Deny, and whether a runtime supports secrets."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..secrets import BadSecret, service_of
from ..secrets.store import check_name
from .base import NOT_SUPPORTED, AccelHandler


class SecretsBase(AccelHandler):
    @property
    def secrets(self):
        return service_of(self)

    def body_object(self) -> dict:
        body = self.json_body()
        if not isinstance(body, dict):
            raise web.HTTPError(400, "request body must be a JSON object")
        return body

    def name_of(self, name: str) -> str:
        try:
            return check_name(name)
        except BadSecret as e:
            raise web.HTTPError(400, str(e)) from None


class SecretsHandler(SecretsBase):
    @web.authenticated
    @authorized
    def get(self):
        self.write_json(self.secrets.store.listing())


class SecretHandler(SecretsBase):
    @web.authenticated
    @authorized
    def get(self, name):
        model = self.secrets.store.model(self.name_of(name))
        if model is None:
            raise web.HTTPError(404, f"no secret named {name!r}")
        self.write_json(model)

    @web.authenticated
    @authorized
    def put(self, name):
        """Body {value, notebooks?}: set the value; `notebooks` replaces the grants."""
        body = self.body_object()
        if "value" not in body:
            raise web.HTTPError(400, "'value' is required")
        store = self.secrets.store
        try:
            new = store.put(self.name_of(name), body["value"], body.get("notebooks"))
        except BadSecret as e:
            raise web.HTTPError(400, str(e)) from None
        self.write_json(store.model(name), 201 if new else 200)

    @web.authenticated
    @authorized
    def delete(self, name):
        if not self.secrets.store.delete(self.name_of(name)):
            raise web.HTTPError(404, f"no secret named {name!r}")
        self.set_status(204)
        self.finish()


class GrantsHandler(SecretsBase):
    """POST {path}: grant a notebook; DELETE ?path=: revoke (takes effect on the next read)."""

    @web.authenticated
    @authorized
    def post(self, name):
        store = self.secrets.store
        if not store.has(self.name_of(name)):
            raise web.HTTPError(404, f"no secret named {name!r}")
        try:
            store.grant(name, self.body_object().get("path"))
        except BadSecret as e:
            raise web.HTTPError(400, str(e)) from None
        self.write_json(store.model(name))

    @web.authenticated
    @authorized
    def delete(self, name):
        store = self.secrets.store
        if not store.has(self.name_of(name)):
            raise web.HTTPError(404, f"no secret named {name!r}")
        try:
            store.revoke(name, self.get_argument("path", ""))
        except BadSecret as e:
            raise web.HTTPError(400, str(e)) from None
        self.write_json(store.model(name))


class SecretRequestsHandler(SecretsBase):
    """Reads waiting for the user: [{id, runtime, kernel_id, notebook, name, created}]."""

    @web.authenticated
    @authorized
    def get(self):
        self.write_json(sorted(self.secrets.pending.values(), key=lambda r: r["created"]))


class SecretRequestHandler(SecretsBase):
    """POST {allow: bool}: answer a waiting read (allowing grants that notebook)."""

    @web.authenticated
    @authorized
    def post(self, rid):
        allow = self.body_object().get("allow")
        if not isinstance(allow, bool):
            raise web.HTTPError(400, "'allow' must be true or false")
        if not self.secrets.decide(rid, allow):
            raise web.HTTPError(404, f"no waiting secret request {rid!r}")
        self.set_status(204)
        self.finish()


class RuntimeSecretsHandler(SecretsBase):
    """{supported, linked}: whether kernels on this runtime can read secrets now."""

    @web.authenticated
    @authorized
    async def get(self, name):
        rt = await self.runtime(name, healthy=True, accel=True)
        if "secrets" not in ((rt.info or {}).get("features") or []):
            raise web.HTTPError(501, NOT_SUPPORTED)
        self.write_json({"supported": True, "linked": self.secrets.linked(rt.name)})
