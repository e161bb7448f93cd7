"""Pieces of the relay's upstream reconnection: back-off, notices to the browser, and
dropping the overlap a runtime re-sends after a reconnect.

When the server <-> runtime leg drops while the browser stays connected, the relay reopens it
with the same session id; our gateway then replays from its output journal what it sent after
that session's last message, plus (asked with `accel_overlap`) the last few seconds before
it, because frames in flight when the link broke were sent but never received. The relay
remembers the msg_ids it forwarded and skips the repeated ones, so the browser gets every
message exactly once. No I/O here.
"""

from __future__ import annotations

import json
import re
import struct
import uuid
from collections import deque
from datetime import datetime, timezone

from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1

V1 = "v1.kernel.websocket.jupyter.org"
_JSON_MSG_ID_TEXT = re.compile(r'"msg_id"\s*:\s*"([^"]*)"')


def backoff(attempt: int, first: float, most: float) -> float:
    """Seconds before reconnect attempt `attempt` (0-based): doubling, capped."""
    return min(most, first * (2 ** min(attempt, 16)))


def frame_msg_id(frame) -> str | None:
    """The header msg_id of a kernel websocket frame, reading only the header: a v1 frame
    (bytes-like: offsets, then channel, header, parent, ...) has its header's few hundred bytes
    parsed; a legacy JSON text frame (str) is searched in its first 4096 characters, where
    jupyter_server writes the header. None for anything else (truncated, garbage); never
    raises."""
    try:
        if isinstance(frame, str):
            m = _JSON_MSG_ID_TEXT.search(frame, 0, 4096)
            return m.group(1) if m else None
        view = memoryview(frame)
        if view.nbytes < 32 or view.format != "B" or view.ndim != 1:
            return None
        n, _, start, end = struct.unpack_from("<4Q", view)
        if n < 3 or not 8 * (n + 1) <= start <= end <= view.nbytes:
            return None
        header = json.loads(view[start:end].tobytes())
        msg_id = header.get("msg_id") if isinstance(header, dict) else None
        return msg_id if isinstance(msg_id, str) else None
    except (ValueError, TypeError, struct.error, RecursionError):
        return None


class SeenIds:
    """The last `size` msg_ids forwarded; after a reconnect, drops repeats until the first
    new message (the runtime replays in order, so everything after it is new)."""

    def __init__(self, size: int = 4096):
        self._order: deque[str] = deque()
        self._set: set[str] = set()
        self.size = size
        self.deduping = False

    def remember(self, msg_id: str) -> None:
        self._order.append(msg_id)
        self._set.add(msg_id)
        while len(self._order) > self.size:
            self._set.discard(self._order.popleft())

    def is_repeat(self, frame) -> bool:
        msg_id = frame_msg_id(frame)
        if msg_id is None:
            return False
        if self.deduping:
            if msg_id in self._set:
                return True
            self.deduping = False
        self.remember(msg_id)
        return False


def notice_frame(protocol: str, kind: str, message: str, msg_type: str = "accel_notice", **extra):
    """An iopub message from the relay itself, in the protocol the browser negotiated."""
    header = {
        "msg_id": f"accel-{uuid.uuid4().hex}",
        "msg_type": msg_type,
        "username": "jupyterlab-accel",
        "session": "jupyterlab-accel",
        "date": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "version": "5.3",
    }
    if msg_type == "accel_notice":
        content = {"kind": kind, "message": message, **extra}
    else:
        content = extra
    if protocol == V1:
        parts = [json.dumps(p).encode() for p in (header, {}, {}, content)]
        return serialize_msg_to_ws_v1(parts, "iopub")
    return json.dumps(
        {
            "header": header,
            "msg_id": header["msg_id"],
            "msg_type": msg_type,
            "parent_header": {},
            "metadata": {},
            "content": content,
            "buffers": [],
            "channel": "iopub",
        }
    )


def dead_status_frame(protocol: str):
    return notice_frame(protocol, "", "", msg_type="status", execution_state="dead")
