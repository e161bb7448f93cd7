"""Output journal: every kernel's iopub messages, and the shell/control/stdin messages of each
websocket session, numbered in arrival order, in one ring bounded in bytes.

The journal lives on the gateway, so output produced while nobody is connected (browser closed,
laptop asleep, server <-> gateway link cut) is still there when a client comes back:
- `GET /api/accel/kernels/{id}/journal?since=SEQ` returns what a client missed, as JSON;
- a kernel websocket that reconnects with the same session id gets what it missed, in order,
  exactly once (see websocket.py); this replaces jupyter_server's unbounded offline buffer.

Replies (execute_reply, interrupt_reply, input_request, comm replies...) go to the ZMQ identity
of one websocket session, so they are recorded under that session's key and replayed only to
it; a session whose websocket went away keeps its ZMQ channels open ("parked", bounded per
kernel) so replies sent while it is away land here instead of being dropped by the kernel.

When the ring is full the oldest messages go; the journal counts what went per execution and
replay puts a visible marker output in their place. Executions (execute_input: msg_id, code,
execution_count; busy/idle) are kept apart from the ring, so evicting output loses none of them.
No I/O here apart from the iopub subscription `KernelJournal.attach` is handed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, timezone

from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

MiB = 1024 * 1024
# Content and buffer frames this big are kept as views of the ZMQ frames they arrived in (no
# copy); smaller ones, and every header, become bytes.
ZERO_COPY_BYTES = 64 * 1024


def keep_part(part, index: int):
    """One message frame as the journal keeps it: bytes, or for a large content/buffer frame
    (index >= 3) a memoryview of the received frame (zmq.Frame, memoryview, bytearray)."""
    if isinstance(part, bytes):
        return part
    view = memoryview(part)
    if index >= 3 and view.nbytes >= ZERO_COPY_BYTES and view.format == "B" and view.ndim == 1:
        return view
    return view.tobytes()


_TAIL_COUNT = re.compile(rb'"execution_count"\s*:\s*(null|-?(?:0|[1-9][0-9]{0,17}))\s*}\s*\Z')
_UNKNOWN = object()


def tail_execution_count(part):
    """The top-level execution_count of a JSON object that ends with it (ipykernel writes an
    execute_result's content as data, metadata, execution_count), from its last 256 bytes:
    the key closes the object the document ends with, so it is top-level. _UNKNOWN where the
    tail does not read so (another key order, a float): then parse the whole content."""
    view = memoryview(part)
    m = _TAIL_COUNT.search(view[-256:].tobytes())
    if m is None:
        return _UNKNOWN
    return None if m.group(1) == b"null" else int(m.group(1))


def load_part(unpack, part):
    """`unpack` of a kept frame (JSON loaders take bytes, not memoryviews)."""
    return unpack(part if isinstance(part, bytes) else bytes(part))


@dataclass
class Entry:
    seq: int
    parts: list  # [header, parent_header, metadata, content, *buffers]: bytes, or memoryviews
    # of large content/buffer frames (keep_part); read content with load_part
    header: dict
    parent: dict
    size: int
    t: float = 0.0  # time.monotonic() when recorded
    channel: str = "iopub"
    session: str | None = None  # websocket session key of a reply; None: iopub, for everyone


@dataclass
class Execution:
    msg_id: str
    parent: dict  # the execute_request's header: markers carry it as their parent
    code: str = ""
    execution_count: int | None = None
    status: str = "busy"
    first_seq: int = 0
    last_seq: int = 0
    dropped_messages: int = 0
    dropped_bytes: int = 0
    dropped_until: int = 0  # highest seq of this execution's dropped messages

    def to_dict(self) -> dict:
        return {
            "msg_id": self.msg_id,
            "code": self.code,
            "execution_count": self.execution_count,
            "status": self.status,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "dropped_messages": self.dropped_messages,
            "dropped_bytes": self.dropped_bytes,
        }


def _size_text(n: int) -> str:
    if n >= MiB / 10:
        return f"{n / MiB:.1f} MB"
    return f"{max(1, round(n / 1024))} KB"


def marker_text(messages: int, nbytes: int) -> str:
    return (
        f"[jupyterlab-accel: {_size_text(nbytes)} of output dropped while disconnected "
        f"({messages} messages)]\n"
    )


def _iso_now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class KernelJournal:
    """One kernel's journal. `pack`/`unpack` are the kernel session's serializers."""

    def __init__(self, kernel_id: str, max_bytes: int, max_executions: int, pack, unpack):
        self.kernel_id = kernel_id
        self.max_bytes = max_bytes
        self.max_executions = max_executions
        self.pack, self.unpack = pack, unpack
        self.entries: deque[Entry] = deque()
        self.bytes = 0
        self.seq = 0  # last seq given out
        self.executions: OrderedDict[str, Execution] = OrderedDict()
        self.dropped_messages = 0
        self.dropped_bytes = 0
        # websocket session key -> (last seq it was sent, monotonic time it went away, the
        # seq before its first message: rewinding never re-sends what it never got)
        self.cursors: dict[str, tuple[int, float, int]] = {}
        self.active: dict[str, object] = {}  # session key -> connection fed now
        self.listeners: list = []  # callables(entry) for live delivery
        # session key -> (channels {shell, control, stdin}, kernel ports) of a session whose
        # websocket went away: its replies are recorded until it comes back
        self.parked: OrderedDict[str, tuple[dict, list]] = OrderedDict()
        self._stream = None
        self.subscribed = asyncio.Event()  # set by the first message (ipykernel's iopub_welcome)

    async def wait_subscribed(self, timeout: float) -> bool:
        """ZMQ subscriptions connect asynchronously: wait until messages arrive, so a client
        that connects after the kernel start returned misses none."""
        try:
            await asyncio.wait_for(self.subscribed.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    # -- recording ------------------------------------------------------------------------
    def attach(self, stream, session) -> None:
        """Record every message of an iopub ZMQStream (a kernel's; replaced after restarts)."""
        self.detach()
        self._stream = stream
        self.subscribed.clear()

        def on_recv(msg_list):
            _, fed = session.feed_identities(msg_list, copy=False)
            self.record(fed[1:])  # without the signature

        # zmq.Frames, not bytes: a large output is kept (and sent on) without being copied
        stream.on_recv(on_recv, copy=False)

    def detach(self) -> None:
        if self._stream is not None:
            if not self._stream.closed():
                self._stream.close()
            self._stream = None

    def record(self, parts: list, channel: str = "iopub", session: str | None = None) -> Entry:
        """Number and keep one message (without identities and signature); `session` is the
        websocket session key a shell/control/stdin message was addressed to."""
        parts = [keep_part(p, i) for i, p in enumerate(parts)]
        header, parent = self.unpack(parts[0]), self.unpack(parts[1])
        self.seq += 1
        size = sum(len(p) for p in parts)
        entry = Entry(self.seq, parts, header, parent, size, time.monotonic(), channel, session)
        if channel == "iopub":
            self.subscribed.set()
            self._track(entry)
        self.entries.append(entry)
        self.bytes += entry.size
        while self.bytes > self.max_bytes and len(self.entries) > 1:
            self._drop(self.entries.popleft())
        for listener in list(self.listeners):
            try:
                listener(entry)
            except Exception:  # one broken websocket must not stop the others or the record
                logging.getLogger(__name__).exception(
                    "journal listener of %s failed", self.kernel_id
                )
        return entry

    def _track(self, entry: Entry) -> None:
        msg_type = entry.header.get("msg_type")
        pid = entry.parent.get("msg_id")
        if not pid or entry.parent.get("msg_type") != "execute_request":
            return
        ex = self.executions.get(pid)
        if ex is None:
            ex = self.executions[pid] = Execution(pid, entry.parent, first_seq=entry.seq)
            while len(self.executions) > self.max_executions:
                self.executions.popitem(last=False)
        ex.last_seq = entry.seq
        if msg_type == "execute_result" and len(entry.parts[3]) >= ZERO_COPY_BYTES:
            count = tail_execution_count(entry.parts[3])  # a big output (a DataFrame's HTML)
            if count is not _UNKNOWN:  # is not parsed for its count
                ex.execution_count = count
                return
        if msg_type in ("execute_input", "status", "execute_result"):
            content = load_part(self.unpack, entry.parts[3])
            if msg_type == "execute_input":
                ex.code = content.get("code", "")
                ex.execution_count = content.get("execution_count")
            elif msg_type == "execute_result":
                ex.execution_count = content.get("execution_count", ex.execution_count)
            else:
                ex.status = content.get("execution_state", ex.status)

    def _drop(self, entry: Entry) -> None:
        self.bytes -= entry.size
        self.dropped_messages += 1
        self.dropped_bytes += entry.size
        ex = self.executions.get(entry.parent.get("msg_id", ""))
        if ex is not None:
            ex.dropped_messages += 1
            ex.dropped_bytes += entry.size
            ex.dropped_until = entry.seq

    # -- parked sessions ------------------------------------------------------------------
    def park(self, session_key: str, channels: dict, ports: list, limit: int, feed) -> None:
        """Keep recording a gone session's reply channels (ZMQStreams) until it comes back;
        beyond `limit` parked sessions the oldest is closed. `feed` is the session's
        feed_identities."""
        self.unpark(session_key)
        for name, stream in channels.items():
            stream.on_recv(self._recorder(name, session_key, feed))
        self.parked[session_key] = (channels, ports)
        while len(self.parked) > limit:
            self.unpark(next(iter(self.parked)))

    def _recorder(self, channel: str, session_key: str, feed):
        def on_recv(msg_list):
            _, fed = feed(msg_list)
            self.record(fed[1:], channel, session_key)

        return on_recv

    def take_parked(self, session_key: str, ports: list) -> dict | None:
        """The parked channels of a returning session; None if none (or stale after a
        restart with new ports, then closed)."""
        channels, parked_ports = self.parked.pop(session_key, (None, None))
        if channels is None:
            return None
        if parked_ports != ports or any(s.closed() for s in channels.values()):
            _close(channels)
            return None
        for stream in channels.values():
            stream.stop_on_recv()
        return channels

    def unpark(self, session_key: str) -> None:
        channels, _ = self.parked.pop(session_key, (None, None))
        if channels is not None:
            _close(channels)

    # -- replay ---------------------------------------------------------------------------
    def rewind(self, seq: int, until: float, seconds: float, floor: int = 0) -> int:
        """The seq before the messages recorded in the `seconds` up to `until` (at most `seq`):
        a relay that dedupes by msg_id asks for that overlap, as frames in flight when its
        link broke were sent but never received."""
        start = seq
        for entry in reversed(self.entries):
            if entry.seq > seq:
                continue
            if entry.t < until - seconds or entry.seq <= floor:
                break
            start = entry.seq - 1
        return start

    @property
    def first_seq(self) -> int:
        return self.entries[0].seq if self.entries else self.seq + 1

    def since(self, seq: int, session: str | None = None) -> list[Entry]:
        """Entries after `seq` (iopub, and the replies of `session`), in order, with a marker
        entry (seq of the first surviving message of that execution) before each execution's
        output where some was dropped."""
        out: list[Entry] = []
        marked: set[str] = set()
        for entry in self.entries:
            if entry.seq <= seq or (entry.session is not None and entry.session != session):
                continue
            pid = entry.parent.get("msg_id", "")
            ex = self.executions.get(pid)
            if (
                ex is not None
                and pid not in marked
                and ex.dropped_messages
                and ex.dropped_until > seq
            ):
                marked.add(pid)
                out.append(self.marker(ex, entry.seq))
            out.append(entry)
        return out

    def marker(self, ex: Execution, seq: int) -> Entry:
        # Same id on every replay, so a client that fetched it before can tell.
        header = {
            "msg_id": f"accel-marker-{ex.msg_id}-{ex.dropped_until}",
            "msg_type": "stream",
            "username": "accel-gateway",
            "session": "accel-journal",
            "date": _iso_now(),
            "version": "5.3",
        }
        content = {"name": "stderr", "text": marker_text(ex.dropped_messages, ex.dropped_bytes)}
        parts = [
            self.pack(header),
            self.pack(ex.parent),
            self.pack({"accel_marker": True}),
            self.pack(content),
        ]
        return Entry(seq, parts, header, ex.parent, 0)

    def to_json(self, since: int) -> dict:
        """The body of GET /api/accel/kernels/{id}/journal?since=SEQ."""
        messages = []
        for e in self.since(since):
            if e.session is not None:
                continue
            msg = {
                "seq": e.seq,
                "channel": "iopub",
                "header": e.header,
                "parent_header": e.parent,
                "metadata": self.unpack(e.parts[2]),
                "content": load_part(self.unpack, e.parts[3]),
                "msg_type": e.header.get("msg_type"),
                "buffers": [base64.b64encode(b).decode() for b in e.parts[4:]],
            }
            messages.append(msg)
        return {
            "kernel_id": self.kernel_id,
            "since": since,
            "last_seq": self.seq,
            "first_seq": self.first_seq,
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "dropped_messages": self.dropped_messages,
            "dropped_bytes": self.dropped_bytes,
            "executions": [ex.to_dict() for ex in self.executions.values() if ex.last_seq > since],
            "messages": messages,
        }


class OutputJournal(LoggingConfigurable):
    """The journals of every kernel of this gateway."""

    max_bytes = Int(
        64 * MiB,
        config=True,
        help="Bytes of iopub messages kept per kernel for clients that were away (browser "
        "closed, link cut). Older messages are dropped first; replay shows a marker saying how "
        "much. 0 disables the journal (and websocket replay).",
    )
    subscribe_timeout = Float(
        10,
        config=True,
        help="Seconds a kernel start or restart waits for the journal's iopub subscription "
        "(the kernel's iopub_welcome) before answering.",
    )
    max_parked_sessions = Int(
        8,
        config=True,
        help="Websocket sessions per kernel whose replies (execute_reply, input_request, ...) "
        "are kept while their websocket is away; beyond that the oldest session's are not. "
        "Each holds 3 ZMQ sockets (file descriptors) until it returns or the kernel ends. "
        "0: replies sent while away are lost.",
    )
    max_executions = Int(
        1000,
        config=True,
        help="Executions (code, execution count, busy/idle) remembered per kernel.",
    )

    def __init__(self, **kw):
        super().__init__(**kw)
        self.journals: dict[str, KernelJournal] = {}

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def open(self, kernel_id: str, stream, session) -> KernelJournal | None:
        """Start (or, after a restart, resume) recording a kernel's iopub stream."""
        if not self.enabled:
            stream.close()
            return None
        j = self.journals.get(kernel_id)
        if j is None:
            j = self.journals[kernel_id] = KernelJournal(
                kernel_id, self.max_bytes, self.max_executions, session.pack, session.unpack
            )
        j.attach(stream, session)
        return j

    async def wait_subscribed(self, kernel_id: str, kernel) -> None:
        """Nudge the kernel (kernel_info requests, as jupyter_server does for websockets)
        until its iopub reaches the journal: then a client connecting after the kernel start
        returned misses nothing. `kernel` is the kernel's KernelManager. Waits for a message
        sent after this call: after a restart on the same ports the journal keeps its socket,
        which reconnects to the new kernel only some time later, and the event is still set
        from before."""
        j = self.journals.get(kernel_id)
        if j is None:
            return
        j.subscribed.clear()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.subscribe_timeout
        shell = kernel.connect_shell()
        try:
            while not j.subscribed.is_set() and loop.time() < deadline:
                kernel.session.send(shell, "kernel_info_request")
                await j.wait_subscribed(0.3)
        finally:
            shell.close()
        if not j.subscribed.is_set():
            self.log.warning(
                "Output journal of kernel %s got no message in %ss: output "
                "before the first one may be missing",
                kernel_id,
                self.subscribe_timeout,
            )

    def get(self, kernel_id: str) -> KernelJournal | None:
        return self.journals.get(kernel_id)

    def close(self, kernel_id: str) -> None:
        j = self.journals.pop(kernel_id, None)
        if j is not None:
            j.detach()
            j.listeners.clear()
            for key in list(j.parked):
                j.unpark(key)


def _close(channels: dict) -> None:
    for stream in channels.values():
        if not stream.closed():
            stream.close()


def dumps(body: dict) -> str:
    return json.dumps(body, default=str)
