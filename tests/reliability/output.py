"""Helpers of the reliability tests: a printing cell, and collecting its lines from messages."""

from __future__ import annotations

import re
import time
import uuid

import websocket

from tests.support.kernel_ws import KernelClient, _msg


def printer(count: int, interval: float, prefix: str = "line") -> str:
    """Code of a cell printing `count` numbered lines, one every `interval` seconds."""
    return (
        f"import time\nfor i in range({count}):\n"
        f"    print('{prefix}', i, flush=True)\n    time.sleep({interval})\n"
    )


def send_execute(client: KernelClient, code: str) -> str:
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
        client.session,
    )
    client.send(req)
    return req["header"]["msg_id"]


def read_for(
    client: KernelClient,
    msg_id: str,
    seconds: float,
    until_idle: bool = False,
    stop_at: str | None = None,
    stop_notice: str | None = None,
) -> list:
    """iopub messages of one execution received within `seconds` (sooner once idle, or once
    a message of type `stop_at` came)."""
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client.ws.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            m = client.recv()
        except websocket.WebSocketTimeoutException:
            break
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            break
        if m.get("msg_type") == "accel_notice" or m["header"].get("msg_type") == "accel_notice":
            got.append(m)
            if stop_notice and m["content"].get("kind") == stop_notice:
                break
            continue
        if m["header"]["msg_type"] == "status" and m["content"]["execution_state"] == "dead":
            got.append(m)  # the relay's word that the kernel is gone (no parent)
            break
        if m.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        got.append(m)
        if stop_at and m["header"]["msg_type"] == stop_at:
            break
        if (
            until_idle
            and m["header"]["msg_type"] == "status"
            and m["content"]["execution_state"] == "idle"
        ):
            break
    return got


def stream_text(messages: list) -> str:
    return "".join(m["content"]["text"] for m in messages if m["header"]["msg_type"] == "stream")


def numbers(text: str, prefix: str = "line") -> list[int]:
    return [int(n) for n in re.findall(rf"^{prefix} (\d+)$", text, re.M)]


def new_session() -> str:
    return uuid.uuid4().hex
