"""POST /api/sessions and PATCH /api/sessions/{id}: stock jupyter_server's handlers, except that
an HTTP error of the kernel start keeps its status and fields.

Stock turns any kernel start failure into a 500 (POST: `HTTPError(500, str(e))`) or a 501
(PATCH: `{"message": repr(...)}`), so a runtime's `{"message", "reason"}` refusal (503
no_free_device, max_kernels ...) or an unknown runtime (404) reached the browser as text inside
text. Here the start's own HTTPError is the answer: `{"message": str, "reason": str}` with its
status, as POST /api/kernels already answers."""

from __future__ import annotations

import asyncio
import contextlib
import json

from jupyter_client.jsonutil import json_default
from jupyter_server.auth.decorator import authorized
from jupyter_server.services.sessions.handlers import SessionHandler, SessionRootHandler
from tornado import web

# The shape jupyter_server's session URLs accept (services/sessions/handlers.py).
SESSION_ID = r"(?P<session_id>\w+-\w+-\w+-\w+-\w+)"


def write_http_error(handler, error: web.HTTPError) -> None:
    """The body jupyter_server's APIHandler writes for an HTTPError, with its status."""
    handler.clear()
    handler.set_status(error.status_code, reason=error.reason)
    handler.set_header("Content-Type", "application/json")
    message = error.log_message or ""
    if error.args:
        message = message % error.args
    handler.finish(json.dumps({"message": message, "reason": error.reason}))


class AccelSessionRootHandler(SessionRootHandler):
    def write_error(self, status_code, **kwargs):
        # stock: `except Exception as e: raise web.HTTPError(500, str(e)) from e`
        exc = kwargs.get("exc_info", (None, None, None))[1]
        cause = getattr(exc, "__cause__", None)
        if status_code == 500 and isinstance(cause, web.HTTPError):
            write_http_error(self, cause)
            return
        super().write_error(status_code, **kwargs)


class AccelSessionHandler(SessionHandler):
    @web.authenticated
    @authorized
    async def patch(self, session_id):
        """A kernel change by name starts the new kernel first, here, so a refusal keeps its
        status and fields; stock's PATCH then switches the session to that kernel by id and
        shuts the old one down. When the old kernel is on a runtime, the switch is done here
        and its DELETE is sent without waiting for it (stock waits unless the manager has
        pending kernels): Change runtime type answers a link round trip sooner, and a runtime
        that does not answer the DELETE culls the kernel itself."""
        model = self.get_json_body()
        kernel = model.get("kernel") if isinstance(model, dict) else None
        if not (isinstance(kernel, dict) and kernel.get("id") is None and kernel.get("name")):
            await super().patch(session_id)
            return
        sm, km = self.session_manager, self.kernel_manager
        known = getattr(km, "known_models", None)  # the old kernel's live state is not needed
        with known() if known is not None else contextlib.nullcontext():
            before = await sm.get_session(session_id=session_id)  # 404 for an unknown session
        kernel_id = await sm.start_kernel_for_session(
            session_id,
            kernel_name=kernel["name"],
            name=before["name"],
            path=before["path"],
            type=before["type"],
        )
        old_id = (before.get("kernel") or {}).get("id")
        remote_old = getattr(km, "remote_kernel", None)
        if old_id is None or remote_old is None or remote_old(old_id) is None:
            model["kernel"] = {"id": kernel_id}
            self.request.body = json.dumps(model).encode()
            await super().patch(session_id)
            return
        changes = {k: model[k] for k in ("path", "name", "type") if k in model}
        await sm.update_session(session_id, kernel_id=kernel_id, **changes)
        after = await sm.get_session(session_id=session_id)
        asyncio.ensure_future(_shutdown_quietly(km, old_id, self.log))
        self.finish(json.dumps(after, default=json_default))


async def _shutdown_quietly(km, kernel_id: str, log) -> None:
    try:
        await km.shutdown_kernel(kernel_id)
    except Exception as e:  # noqa: BLE001 - off the request's path: logged, the runtime culls
        log.warning("jupyterlab_accel: the replaced kernel %s did not stop: %s", kernel_id, e)


handlers = [
    (r"/api/sessions", AccelSessionRootHandler),
    (rf"/api/sessions/{SESSION_ID}", AccelSessionHandler),
]
