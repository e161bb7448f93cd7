"""Thin REST handlers over MountManager: /api/accel/mounts[...] (see docs/mounts.md)."""

from __future__ import annotations

import asyncio
import json

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..handlers import BodyLimit
from .source import MountError

_ID = r"(?P<mount_id>[0-9a-f]{12})"


class _Base(BodyLimit, APIHandler):
    auth_resource = "accel"

    def initialize(self, manager):
        self.mounts = manager

    def fail(self, e: MountError) -> None:
        self.set_status(e.status)
        self.finish(json.dumps({"message": e.message, "reason": e.reason}))

    def body(self) -> dict:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise MountError("body is not valid JSON", "bad_json")
        if not isinstance(data, dict):
            raise MountError("body must be a JSON object", "bad_json")
        return data


class MountsHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self):
        self.finish(json.dumps(await self.mounts.list()))

    @web.authenticated
    @authorized
    async def post(self):
        try:
            m = await self.mounts.mount(self.body())
        except MountError as e:
            return self.fail(e)
        self.set_status(201)
        self.finish(json.dumps(await self.mounts.get(m.id)))


class MountHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self, mount_id):
        try:
            self.finish(json.dumps(await self.mounts.get(mount_id)))
        except MountError as e:
            self.fail(e)

    @web.authenticated
    @authorized
    async def delete(self, mount_id):
        try:
            timeout = _timeout(self.get_query_argument("timeout", None))
            await self.mounts.unmount(mount_id, timeout)
        except MountError as e:
            return self.fail(e)
        self.set_status(204)
        self.finish()


class FlushHandler(_Base):
    @web.authenticated
    @authorized
    async def post(self, mount_id):
        try:
            timeout = _timeout(self.body().get("timeout"))
            m = await self.mounts.flush(mount_id, timeout)
            self.finish(json.dumps(await self.mounts.get(m.id)))
        except MountError as e:
            self.fail(e)


class RefreshHandler(_Base):
    @web.authenticated
    @authorized
    async def post(self, mount_id):
        try:
            m = await self.mounts.refresh(mount_id)
            self.finish(json.dumps(await self.mounts.get(m.id)))
        except MountError as e:
            self.fail(e)


class RemotesHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self):
        self.finish(json.dumps(await asyncio.to_thread(self.mounts.describe)))


def _timeout(value):
    if value is None:
        return None
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise MountError("timeout must be a number of seconds")
    if not 0 < t <= 3600:
        raise MountError("timeout must be in (0, 3600] seconds")
    return t


def rules(manager) -> list:
    kw = {"manager": manager}
    return [
        (r"/api/accel/mounts", MountsHandler, kw),
        (r"/api/accel/mounts/remotes", RemotesHandler, kw),
        (rf"/api/accel/mounts/{_ID}", MountHandler, kw),
        (rf"/api/accel/mounts/{_ID}/flush", FlushHandler, kw),
        (rf"/api/accel/mounts/{_ID}/refresh", RefreshHandler, kw),
    ]
