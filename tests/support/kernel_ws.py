"""A plain Jupyter websocket client (legacy JSON protocol), as any standard client speaks it."""

from __future__ import annotations

import json
import time
import uuid

import websocket
from jupyter_server.services.kernels.connection.base import (
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)

V1 = "v1.kernel.websocket.jupyter.org"


def _msg(msg_type: str, content: dict, session: str) -> dict:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "test",
            "session": session,
            "date": "",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": content,
        "channel": "shell",
        "buffers": [],
    }


class KernelClient:
    """One websocket to /api/kernels/{id}/channels.

    protocol: "json" (legacy, what simple clients speak), "v1" (JupyterLab's binary framing), or
    "auto" (v1 where the server accepts it, else json, as JupyterLab does).
    """

    def __init__(
        self,
        base_url: str,
        kernel_id: str,
        token: str,
        timeout: float = 60,
        protocol: str = "json",
        session: str | None = None,
    ):
        # Reconnecting with the same session id gets what the runtime kept for it.
        self.session = session or uuid.uuid4().hex
        ws_url = (
            base_url.replace("http", "ws", 1)
            + f"/api/kernels/{kernel_id}/channels?session_id={self.session}"
        )

        def connect(subprotocols):
            return websocket.create_connection(
                ws_url,
                header=[f"Authorization: token {token}"],
                timeout=timeout,
                enable_multithread=True,
                subprotocols=subprotocols,
            )

        if protocol == "auto":
            try:
                self.ws = connect([V1])
            except websocket.WebSocketException:  # server ignored the subprotocol offer
                self.ws = connect(None)
            protocol = "v1" if self.ws.getsubprotocol() == V1 else "json"
        else:
            self.ws = connect([V1] if protocol == "v1" else None)
        self.timeout = timeout
        self.ws.settimeout(timeout)
        self.v1 = protocol == "v1" and self.ws.getsubprotocol() == V1
        if protocol == "v1" and not self.v1:
            raise RuntimeError("server did not accept the v1 kernel websocket protocol")

    def close(self):
        self.ws.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, msg: dict) -> None:
        if self.v1:
            parts = [
                json.dumps(msg[k]).encode()
                for k in ("header", "parent_header", "metadata", "content")
            ]
            self.ws.send_binary(serialize_msg_to_ws_v1(parts, msg["channel"]))
        else:
            self.ws.send(json.dumps(msg))

    def recv(self) -> dict:
        data = self.ws.recv()
        if not data:  # a close frame
            raise websocket.WebSocketConnectionClosedException("the server closed the websocket")
        if not self.v1:
            return json.loads(data)
        channel, parts = deserialize_msg_from_ws_v1(data)
        header, parent, metadata, content = (json.loads(p) for p in parts[:4])
        return {
            "channel": channel,
            "header": header,
            "parent_header": parent,
            "metadata": metadata,
            "content": content,
            "buffers": parts[4:],
        }

    def execute(self, code: str, timeout: float = 60, on_message=None) -> dict:
        """Run code; return {'reply', 'stdout', 'stderr', 'outputs', 'messages'} once idle."""
        req = _msg(
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
            self.session,
        )
        msg_id = req["header"]["msg_id"]
        self.send(req)
        result = {"reply": None, "stdout": [], "stderr": [], "outputs": [], "messages": []}
        idle = False
        deadline = time.monotonic() + timeout
        while not (idle and result["reply"] is not None):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"no reply within {timeout}s; last: {str(result['messages'][-3:])[:2000]}"
                )
            # Short reads: websocket-client answers server pings inside recv(), so one read
            # with the whole deadline can outlive it (jupyter_server pings every 30 s).
            self.ws.settimeout(min(left, 5.0))
            try:
                m = self.recv()
            except websocket.WebSocketTimeoutException:
                continue
            if on_message:
                on_message(m)
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                result["messages"].append(m)
                continue
            result["messages"].append(m)
            t = m["header"]["msg_type"]
            if t == "execute_reply":
                result["reply"] = m["content"]
            elif t == "status" and m["content"]["execution_state"] == "idle":
                idle = True
            elif t == "stream":
                result[m["content"]["name"]].append(m["content"]["text"])
            elif t in ("execute_result", "display_data", "error"):
                result["outputs"].append(m["content"])
        self.ws.settimeout(self.timeout)
        result["stdout"] = "".join(result["stdout"])
        result["stderr"] = "".join(result["stderr"])
        return result

    def eval(self, expr: str, timeout: float = 60) -> str:
        """The text/plain repr of an expression's value."""
        r = self.execute(expr, timeout)
        if r["reply"]["status"] != "ok":
            raise RuntimeError(r["reply"])
        for out in r["outputs"]:
            if "data" in out:
                return out["data"]["text/plain"]
        raise RuntimeError(f"no value: {r}")
