"""A misbehaving runtime for fault tests: a small tornado server that answers with the wrong
shapes, or records every request it gets (to check what reaches a runtime).

    python -m tests.faults.bad_runtime --port=N --mode=MODE [--record=FILE]

Modes: `good` (well-formed answers), `specs-list`, `specs-types`, `info-list`, `info-types`,
`kernel-later` (well-formed until a kernel exists, then garbage kernel models), `kernel-start`
(garbage at kernel start). With `--slow-flag=FILE`, kernelspecs answer after 3 s while FILE
exists (a slow runtime, switched on and off by the test). Every request is appended to FILE as one JSON line when given."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import uuid

from tornado import web

SPECS = {
    "default": "python3",
    "kernelspecs": {
        "python3": {
            "name": "python3",
            "spec": {"display_name": "Python 3", "language": "python", "argv": [], "env": {}},
            "resources": {},
        }
    },
}
INFO = {"version": "0", "accelerator": "none", "devices": [], "features": [], "limits": {}}
GARBAGE = {
    "specs-list": {"/api/kernelspecs": []},
    "specs-types": {"/api/kernelspecs": {"kernelspecs": {"python3": {"spec": ["x"]}}}},
    "info-list": {"/api/accel/runtime": []},
    "info-types": {"/api/accel/runtime": {"accelerator": 5, "devices": "GPU"}},
}


class Handler(web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

    def initialize(self, opts, kernels):
        self.opts, self.kernels = opts, kernels

    def check_xsrf_cookie(self):
        pass

    def record(self):
        if self.opts.record:
            entry = {
                "method": self.request.method,
                "path": self.request.path,
                "query": self.request.query,
                "headers": dict(self.request.headers),
            }
            with open(self.opts.record, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def answer(self, body, status=200):
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    async def get(self, path):
        self.record()
        mode = self.opts.mode
        path = "/" + path
        if path in GARBAGE.get(mode, {}):
            return self.answer(GARBAGE[mode][path])
        later = mode == "kernel-later" and self.kernels
        if path == "/api/kernelspecs":
            if self.opts.slow_flag and os.path.exists(self.opts.slow_flag):
                await asyncio.sleep(3)
            return self.answer(SPECS)
        if path == "/api/accel/runtime":
            return self.answer(INFO)
        if path in ("/api/kernels", "/api/accel/kernels"):
            return self.answer([{"id": 7}] if later else list(self.kernels.values()))
        if path.startswith("/api/kernels/"):
            kid = path.split("/")[3]
            if later:
                return self.answer("not a kernel")
            if kid in self.kernels:
                return self.answer(self.kernels[kid])
            return self.answer({"message": "no such kernel"}, 404)
        if path.startswith("/api/contents") or path.startswith("/files"):
            return self.answer({"name": "x", "path": path, "type": "file", "content": None})
        return self.answer({"message": "not found"}, 404)

    head = delete = patch = put = get

    async def post(self, path):
        self.record()
        if "/" + path == "/api/kernels":
            if self.opts.mode == "kernel-start":
                return self.answer([], 201)
            kid = str(uuid.uuid4())
            self.kernels[kid] = {
                "id": kid,
                "name": "python3",
                "last_activity": "2026-01-01T00:00:00Z",
                "execution_state": "idle",
                "connections": 0,
            }
            return self.answer(self.kernels[kid], 201)
        return await self.get(path)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", default="good")
    parser.add_argument("--record", default=None)
    parser.add_argument("--slow-flag", default=None, help="kernelspecs slow while this exists")
    opts = parser.parse_args()
    app = web.Application([(r"/(.*)", Handler, {"opts": opts, "kernels": {}})])
    app.listen(opts.port, "127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
