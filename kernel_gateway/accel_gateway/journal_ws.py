"""Kernel websockets fed from the journal: bounded replay on reconnect, no duplicates, no
lost replies.

jupyter_server buffers a kernel's messages (all channels) in memory, unbounded, after its last
websocket closes, and replays them only to the same session. We turn that off
(AccelKernelManager.start_buffering) and deliver everything through the journal instead:
- iopub comes from the journal's own subscription; shell/control/stdin messages arriving on a
  connection's ZMQ channels are recorded under its session key, then sent. One numbered
  source, so live and replayed messages keep the kernel's arrival order.
- each connection remembers the last seq it sent under its session key. When its websocket
  goes away (from any number of clients, not only the last one), its shell/control/stdin
  channels stay open, parked in the journal, so a reply or input_request the kernel sends
  meanwhile is recorded, not dropped by the kernel's ROUTER socket.
- a websocket that comes back with the same session id takes over those channels (same ZMQ
  identity: an input_reply reaches the waiting input()) and gets everything after its seq
  (iopub and its own replies, with drop markers), then live messages, all on the event loop
  in seq order, so nothing is sent twice and nothing is skipped.
A new session id gets live messages from its connection on (as in stock); what came before
is in GET /api/accel/kernels/{id}/journal.

Frames are written exactly as stock jupyter_server writes them: v1 frames from the raw parts,
legacy JSON as `Session.deserialize` builds them (header, msg_id, msg_type, parent_header,
metadata, content, buffers, channel; dates through extract_dates and json_default). A v1 frame
goes out as pieces (websocket header + offsets, then the parts): a large output reaches the
socket straight from the ZMQ frame it arrived in, never joined or copied (write_frame).
"""

from __future__ import annotations

import json
import struct
import time
from asyncio import Future
from typing import TYPE_CHECKING

import zmq
from jupyter_client.jsonutil import extract_dates, json_default
from jupyter_server.services.kernels.connection.base import serialize_binary_message
from tornado.iostream import IOStream, StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketProtocol13

from .journal import load_part

if TYPE_CHECKING:  # the mixin's host class, for the type checker only
    from jupyter_server.services.kernels.connection.channels import (
        ZMQChannelsWebsocketConnection as _Host,
    )
else:
    _Host = object

V1 = "v1.kernel.websocket.jupyter.org"
MAX_CURSORS = 256  # remembered session cursors per kernel
REPLY_CHANNELS = ("shell", "control", "stdin")
SEPARATE_BYTES = 16 * 1024  # pieces this big are handed to the socket as they are, not joined


def legacy_message(parts: list, channel: str, unpack) -> dict:
    """The dict stock jupyter_server sends as a legacy JSON frame (Session.deserialize)."""
    header = load_part(unpack, parts[0])
    return {
        "header": extract_dates(header),
        "msg_id": header["msg_id"],
        "msg_type": header["msg_type"],
        "parent_header": extract_dates(load_part(unpack, parts[1])),
        "metadata": load_part(unpack, parts[2]),
        "content": load_part(unpack, parts[3]),
        "buffers": [memoryview(b) for b in parts[4:]],
        "channel": channel,
    }


def v1_pieces(parts: list, channel: str) -> list:
    """A v1.kernel.websocket.jupyter.org frame as pieces: b"".join(v1_pieces(parts, channel))
    is serialize_msg_to_ws_v1(parts, channel) (offset count, offsets, channel, parts)."""
    name = channel.encode("utf-8")
    offsets = [8 * (len(parts) + 3), 8 * (len(parts) + 3) + len(name)]
    for p in parts:
        offsets.append(offsets[-1] + len(p))
    return [struct.pack(f"<{len(offsets) + 1}Q", len(offsets), *offsets) + name, *parts]


def ws_frame(parts: list, channel: str, subprotocol: str | None, unpack):
    """(frame, binary) for one message in the negotiated protocol; a v1 frame as a list of
    pieces (write_frame sends them as one websocket message)."""
    if subprotocol == V1:
        return v1_pieces(parts, channel), True
    msg = legacy_message(parts, channel, unpack)
    if msg["buffers"]:
        return serialize_binary_message(msg), True
    return json.dumps(msg, default=json_default), False


def ws_header(length: int, binary: bool) -> bytes:
    """An unmasked, final, uncompressed websocket data frame header (RFC 6455 5.2)."""
    first = 0x82 if binary else 0x81
    if length < 126:
        return struct.pack("!BB", first, length)
    if length <= 0xFFFF:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def write_frame(handler, pieces: list, binary: bool = True):
    """handler.write_message(b"".join(pieces), binary) without the join: on a plain tornado
    websocket (no compression, not masking) the pieces go to the stream as they are (small
    ones joined), so a large payload is never copied in Python (send_pieces). Returns a
    Future done once written; raises WebSocketClosedError like write_message."""
    proto = getattr(handler, "ws_connection", None)
    if (
        type(proto) is not WebSocketProtocol13
        or proto._compressor is not None
        or proto.mask_outgoing
    ):
        return handler.write_message(b"".join(pieces), binary=binary)
    if proto.is_closing():
        raise WebSocketClosedError()
    length = sum(len(p) for p in pieces)
    head = ws_header(length, binary)
    proto._message_bytes_out += length
    proto._wire_bytes_out += len(head) + length
    chunks, small = [], [head]
    for p in pieces:  # small pieces joined (cheap), large ones as they are
        if len(p) < SEPARATE_BYTES:
            small.append(p)
            continue
        if small:
            chunks.append(b"".join(small))
            small = []
        chunks.append(p)
    if small:
        chunks.append(b"".join(small))
    try:
        return send_pieces(proto.stream, chunks)
    except StreamClosedError:
        raise WebSocketClosedError() from None


def send_pieces(stream, pieces: list):
    """stream.write of each piece, in order. On a plain TCP IOStream with nothing queued they
    first go out in one sendmsg (the frame header and its payload in one syscall and one
    burst, not two); tornado queues whatever the socket did not take. Returns a Future done
    once all is written; raises StreamClosedError like stream.write."""
    if type(stream) is IOStream and not stream.writing() and not stream.closed():
        try:
            sent = stream.socket.sendmsg(pieces)
        except OSError:  # EAGAIN, or an error tornado's own write meets and reports
            sent = 0
        rest = []
        for p in pieces:
            if sent >= len(p):
                sent -= len(p)
                continue
            rest.append(memoryview(p)[sent:] if sent else p)
            sent = 0
        if not rest:
            done: Future = Future()
            done.set_result(None)
            return done
        pieces = rest
    for p in pieces:
        done = stream.write(p)
    return done


class JournalReplayMixin(_Host):
    """For a ZMQChannelsWebsocketConnection subclass; needs `multi_kernel_manager.journal`."""

    _journal = None
    _fed_by_journal = False
    _sent_seq = 0
    _floor_seq = 0  # the seq before the first message this session was sent
    _resumed = None  # (cursor or None, parked channels or None), taken before connecting

    def _journal_of_kernel(self):
        store = getattr(self.multi_kernel_manager, "journal", None)
        return store.get(self.kernel_id) if store is not None else None

    def _store(self):
        return getattr(self.multi_kernel_manager, "journal", None)

    def connect(self):
        journal = self._journal_of_kernel()
        if journal is not None:
            self._resumed = self._take_session(journal)
        connected = super().connect()
        if journal is None or connected is None:
            return connected
        self._journal = journal
        self._fed_by_journal = True
        cursor = self._resumed[0]
        self._resumed = None
        if cursor is None:
            self._sent_seq = self._floor_seq = journal.seq  # a new session: from now on
        else:
            self._sent_seq = cursor
            replay = journal.since(cursor, self.session_key)
            if replay:
                self.log.info(
                    "Replaying %d journal message(s) to %s", len(replay), self.session_key
                )
            for entry in replay:
                self._send_entry(entry, force=True)
        journal.listeners.append(self._send_entry)
        journal.active[self.session_key] = self
        if hasattr(connected, "add_done_callback"):
            connected.add_done_callback(self._mute_iopub)
        return connected

    def _mute_iopub(self, _=None) -> None:
        """Unsubscribe this connection's own iopub socket once the nudge (which needs it) is
        done: the journal's subscription delivers iopub, so this one would only receive (and
        copy) every output a second time, and make the kernel send it twice."""
        stream = self.channels.get("iopub")
        socket = getattr(stream, "socket", None)
        if stream is None or socket is None or stream.closed():
            return
        try:
            socket.setsockopt(zmq.UNSUBSCRIBE, b"")
        except zmq.ZMQError:
            pass

    def create_stream(self):
        """Take over this session's reply channels (parked, or of its stale websocket) so the
        kernel's replies keep one ZMQ identity; else open new ones as stock does."""
        channels = self._resumed[1] if self._resumed else None
        if not channels:
            return super().create_stream()
        self.channels = dict(channels)
        self.channels["iopub"] = stream = self.kernel_manager.connect_iopub(
            identity=self.session.bsession
        )
        stream.channel = "iopub"

    def _take_session(self, journal) -> tuple[int | None, dict | None]:
        """(last seq sent to this session or None, its reply channels or None)."""
        ports = list(self.kernel_manager.ports)
        stale = journal.active.pop(self.session_key, None)
        if stale is not None:  # the old socket of this session is not closed yet: take over
            saved = (stale._sent_seq, time.monotonic(), stale._floor_seq)
            stale._detach_journal(save=False)
            channels = stale._give_up_channels()
        else:
            saved = journal.cursors.pop(self.session_key, None)
            channels = journal.take_parked(self.session_key, ports)
        if saved is None:
            if channels:  # no cursor (evicted): nothing to replay, but keep the identity
                return None, channels
            return None, None
        seq, gone_at, self._floor_seq = saved
        try:  # ?accel_overlap=SECONDS: re-send what went out just before the link broke
            overlap = float(self.websocket_handler.get_argument("accel_overlap", "0"))
        except ValueError:
            overlap = 0.0
        if overlap > 0:
            seq = journal.rewind(seq, gone_at, min(overlap, 60.0), self._floor_seq)
        return seq, channels

    def _give_up_channels(self) -> dict | None:
        """Hand this (stale) connection's reply channels to its successor."""
        channels = {k: self.channels[k] for k in REPLY_CHANNELS if k in self.channels}
        if len(channels) != len(REPLY_CHANNELS) or any(s.closed() for s in channels.values()):
            return None
        for stream in channels.values():
            stream.stop_on_recv()
        iopub = self.channels.get("iopub")
        if iopub is not None and not iopub.closed():
            iopub.close()
        self.channels = {}  # disconnect() closes nothing of the successor's
        return channels

    def _send_entry(self, entry, force: bool = False) -> None:
        if entry.session is not None and entry.session != self.session_key:
            return
        if not force and entry.seq <= self._sent_seq:
            return
        try:
            frame, binary = ws_frame(
                entry.parts, entry.channel, self.subprotocol, self.session.unpack
            )
            if isinstance(frame, list):
                write_frame(self.websocket_handler, frame, binary)
            elif isinstance(frame, str) and len(frame) >= SEPARATE_BYTES:
                write_frame(self.websocket_handler, [frame.encode("utf-8")], False)
            else:
                self.write_message(frame, binary=binary)
        except WebSocketClosedError:
            return  # disconnect() keeps the cursor at the last message sent
        self._sent_seq = max(self._sent_seq, entry.seq)

    def handle_outgoing_message(self, stream, outgoing_msg):
        if not self._fed_by_journal or self._journal is None:
            return super().handle_outgoing_message(stream, outgoing_msg)
        channel = stream if isinstance(stream, str) else getattr(stream, "channel", None)
        if channel == "iopub":
            return  # the journal's own subscription records iopub
        if channel not in REPLY_CHANNELS:
            return super().handle_outgoing_message(stream, outgoing_msg)
        _, fed = self.session.feed_identities(outgoing_msg)
        self._journal.record(fed[1:], channel, self.session_key)  # listeners send it

    def _detach_journal(self, save: bool) -> None:
        journal = self._journal
        if journal is None:
            return
        self._journal = None
        if self._send_entry in journal.listeners:
            journal.listeners.remove(self._send_entry)
        if journal.active.get(self.session_key) is self:
            del journal.active[self.session_key]
        if save:
            journal.cursors[self.session_key] = (self._sent_seq, time.monotonic(), self._floor_seq)
            while len(journal.cursors) > MAX_CURSORS:
                journal.cursors.pop(next(iter(journal.cursors)))

    def _park_channels(self, journal) -> None:
        """Keep this session's reply channels recording while its websocket is away."""
        channels = {k: self.channels.get(k) for k in REPLY_CHANNELS}
        if any(s is None or s.closed() for s in channels.values()):
            return
        store = self._store()
        limit = store.max_parked_sessions if store is not None else 0
        if limit <= 0 or self.kernel_id not in self.multi_kernel_manager:
            return
        journal.park(
            self.session_key,
            channels,
            list(self.kernel_manager.ports),
            limit,
            self.session.feed_identities,
        )
        iopub = self.channels.get("iopub")
        if iopub is not None and not iopub.closed():
            iopub.close()
        self.channels = {}  # stock disconnect() must not close the parked channels

    def disconnect(self):
        journal = self._journal
        owner = journal is not None and journal.active.get(self.session_key) is self
        self._detach_journal(save=True)
        if owner:
            self._park_channels(journal)
        return super().disconnect()
