"""Debug enumeration of a live app's handlers: `python -m tests.security.routes gateway|server
ARGS...` builds the real app in this process (initialize, never started) and prints one JSON
line per URL rule: pattern, handler, implemented methods, websocket, and the methods jupyter_server
marks public (@allow_unauthenticated). The auth test requests each of them against a live process."""

from __future__ import annotations

import json
import sys

from tornado import web
from tornado.routing import PathMatches, Router
from tornado.websocket import WebSocketHandler


def rules_of(router):
    for rule in getattr(router, "rules", []):
        target = rule.target
        if isinstance(target, Router) or hasattr(target, "rules"):
            yield from rules_of(target)
        elif isinstance(target, type) and issubclass(target, web.RequestHandler):
            if isinstance(rule.matcher, PathMatches):
                yield rule.matcher.regex.pattern, target


def describe(handler: type) -> dict:
    methods, public = [], []
    for name in handler.SUPPORTED_METHODS:
        fn = getattr(handler, name.lower(), None)
        if fn is None or fn is web.RequestHandler._unimplemented_method:
            continue
        methods.append(name)
        if getattr(fn, "__allow_unauthenticated", False) is True:
            public.append(name)
    return {
        "handler": f"{handler.__module__}:{handler.__qualname__}",
        "methods": methods,
        "public": public,
        "websocket": issubclass(handler, WebSocketHandler),
    }


def build(kind: str, argv: list[str]):
    if kind == "gateway":
        from accel_gateway.app import AccelGatewayApp as App
    else:
        from jupyter_server.serverapp import ServerApp as App
    app = App.instance()
    app.initialize(argv=argv)
    return app


def main() -> None:
    kind, argv = sys.argv[1], sys.argv[2:]
    app = build(kind, argv)
    seen = set()
    for pattern, handler in rules_of(app.web_app.default_router):
        if (pattern, handler) in seen:
            continue
        seen.add((pattern, handler))
        print(json.dumps({"pattern": pattern, **describe(handler)}), flush=True)
    app.http_server.stop()


if __name__ == "__main__":
    main()
