"""What the conformance suite compares: the shape of every frame (fields and their types), and
per channel the order of message types and execution states. Plus a reader that collects a
websocket's messages until a condition holds."""

from __future__ import annotations

import json
import time
import uuid

import websocket
from jupyter_server.services.kernels.connection.base import deserialize_binary_message

from tests.support.kernel_ws import KernelClient

CHANNELS = ("shell", "control", "stdin", "iopub")
# Noise no scenario asks for: ipykernel greets each new iopub subscriber.
IGNORED_TYPES = {"iopub_welcome"}


def type_name(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes"
    return {dict: "object", list: "array", str: "string", int: "number", float: "number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def fields(d: dict) -> dict:
    return {k: type_name(v) for k, v in sorted(d.items())}


def shape(msg: dict) -> dict:
    """Fields and types of one frame as received (legacy JSON: its top level too)."""
    return {
        "top": fields(msg),
        "header": fields(msg["header"]),
        "parent_header": fields(msg["parent_header"]) if msg["parent_header"] else {},
        "content": fields(msg["content"]),
        "buffers": len(msg.get("buffers") or []),
    }


def request(msg_type: str, content: dict, session: str, channel: str = "shell") -> dict:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "conformance",
            "session": session,
            "date": "2026-01-01T00:00:00.000000Z",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": content,
        "channel": channel,
        "buffers": [],
    }


def execute_request(code: str, session: str, allow_stdin: bool = False) -> dict:
    return request(
        "execute_request",
        {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": allow_stdin,
            "stop_on_error": True,
        },
        session,
    )


class Reader:
    """All messages one websocket received, in order; `until` reads on until a predicate over
    them holds (or the time is up)."""

    def __init__(self, client: KernelClient):
        self.client = client
        self.messages: list[dict] = []
        self.closed = False

    def read(self, seconds: float) -> None:
        """Everything that arrives within `seconds`."""
        deadline = time.monotonic() + seconds
        while not self.closed and (left := deadline - time.monotonic()) > 0:
            self._read_one(left)

    def until(self, pred, seconds: float = 30) -> bool:
        deadline = time.monotonic() + seconds
        while not pred(self.messages):
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return False
            self._read_one(left)
        return True

    def recv(self) -> dict:
        """One message; legacy frames with buffers come as binary (stock's binary framing)."""
        if self.client.v1:
            return self.client.recv()
        data = self.client.ws.recv()
        if not data:
            raise websocket.WebSocketConnectionClosedException("the server closed the websocket")
        if isinstance(data, bytes):
            msg = deserialize_binary_message(data)
            msg["buffers"] = [bytes(b) for b in msg["buffers"]]
            return msg
        return json.loads(data)

    def _read_one(self, left: float) -> None:
        self.client.ws.settimeout(max(0.05, min(2.0, left)))
        try:
            m = self.recv()
        except websocket.WebSocketTimeoutException:
            return
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            self.closed = True
            return
        self.messages.append(m)

    def of(self, msg_id: str) -> list[dict]:
        return [m for m in self.messages if m["parent_header"].get("msg_id") == msg_id]


def done(msg_id: str, reply_type: str):
    """Predicate: the reply to msg_id and its idle status have both arrived."""

    def pred(messages) -> bool:
        mine = [m for m in messages if m["parent_header"].get("msg_id") == msg_id]
        return any(m["header"]["msg_type"] == reply_type for m in mine) and any(
            m["header"]["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
            for m in mine
        )

    return pred


def trace(messages: list[dict]) -> dict:
    """Per channel: the sequence of msg_type (status with its state)."""
    out: dict[str, list[str]] = {}
    for m in messages:
        t = m["header"]["msg_type"]
        if t in IGNORED_TYPES:
            continue
        if t == "status":
            t = f"status:{m['content']['execution_state']}"
        elif t == "stream":  # ipykernel splits or joins a stream's flushes as timing goes
            t = f"stream:{m['content']['name']}"
        seq = out.setdefault(m["channel"], [])
        if not (t.startswith("stream:") and seq and seq[-1] == t):
            seq.append(t)
    return out


def shapes(messages: list[dict]) -> dict:
    """msg_type@channel -> its frame shape (the first one of each kind)."""
    out: dict[str, dict] = {}
    for m in messages:
        t = m["header"]["msg_type"]
        if t in IGNORED_TYPES:
            continue
        out.setdefault(f"{t}@{m['channel']}", shape(m))
    return out


def once_in_order(messages: list[dict]) -> list[str]:
    """msg_ids seen more than once (a client must get each message once)."""
    seen, repeats = set(), []
    for m in messages:
        mid = m["header"]["msg_id"]
        if mid in seen:
            repeats.append(mid)
        seen.add(mid)
    return repeats


def dump(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, default=str)[:6000]
