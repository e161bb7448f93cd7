"""Kernel websockets fed from the output journal: bounded replay on reconnect, no duplicates.

jupyter_server buffers a kernel's messages in memory, unbounded, after its last websocket
closes, and replays them only to the same session. We turn that off (AccelKernelManager) and
instead deliver iopub from the journal: each connection remembers the last journal seq it sent
under its session key; a websocket that comes back with the same session id gets everything
after that seq (with drop markers) and then live messages, all on the event loop in seq order,
so nothing is sent twice and nothing is skipped. Other channels (shell, control, stdin) stay
as in jupyter_server: replies to requests sent while away cannot be replayed, their iopub
output can.
"""

from __future__ import annotations

import json
import time

from jupyter_client.jsonutil import json_default
from jupyter_server.services.kernels.connection.base import (
    serialize_binary_message,
    serialize_msg_to_ws_v1,
)
from tornado.websocket import WebSocketClosedError

V1 = "v1.kernel.websocket.jupyter.org"
MAX_CURSORS = 256  # remembered session cursors per kernel


class JournalReplayMixin:
    """For a ZMQChannelsWebsocketConnection subclass; needs `multi_kernel_manager.journal`."""

    _journal = None
    _fed_by_journal = False
    _sent_seq = 0
    _floor_seq = 0  # the seq before the first message this session was sent

    def _journal_of_kernel(self):
        store = getattr(self.multi_kernel_manager, "journal", None)
        return store.get(self.kernel_id) if store is not None else None

    def connect(self):
        connected = super().connect()
        journal = self._journal_of_kernel()
        if journal is None or connected is None:
            return connected
        self._journal = journal
        self._fed_by_journal = True
        cursor = self._take_cursor(journal)
        if cursor is None:
            self._sent_seq = self._floor_seq = journal.seq  # a new session: from now on
        else:
            self._sent_seq = cursor
            replay = journal.since(cursor)
            if replay:
                self.log.info(
                    "Replaying %d journal message(s) to %s", len(replay), self.session_key
                )
            for entry in replay:
                self._send_entry(entry, force=True)
        journal.listeners.append(self._send_entry)
        journal.active[self.session_key] = self
        return connected

    def _take_cursor(self, journal) -> int | None:
        stale = journal.active.pop(self.session_key, None)
        if stale is not None:  # the old socket of this session is not closed yet: take over
            saved = (stale._sent_seq, time.monotonic(), stale._floor_seq)
            stale._detach_journal(save=False)
        else:
            saved = journal.cursors.pop(self.session_key, None)
        if saved is None:
            return None
        seq, gone_at, self._floor_seq = saved
        try:  # ?accel_overlap=SECONDS: re-send what went out just before the link broke
            overlap = float(self.websocket_handler.get_argument("accel_overlap", "0"))
        except ValueError:
            overlap = 0.0
        if overlap > 0:
            seq = journal.rewind(seq, gone_at, min(overlap, 60.0), self._floor_seq)
        return seq

    def _send_entry(self, entry, force: bool = False) -> None:
        if not force and entry.seq <= self._sent_seq:
            return
        try:
            if self.subprotocol == V1:
                self.write_message(serialize_msg_to_ws_v1(entry.parts, "iopub"), binary=True)
            else:
                unpack = self.session.unpack
                msg = {
                    "header": entry.header,
                    "parent_header": entry.parent,
                    "metadata": unpack(entry.parts[2]),
                    "content": unpack(entry.parts[3]),
                    "buffers": entry.parts[4:],
                    "channel": "iopub",
                }
                if msg["buffers"]:
                    self.write_message(serialize_binary_message(msg), binary=True)
                else:
                    self.write_message(json.dumps(msg, default=json_default))
        except WebSocketClosedError:
            return  # disconnect() keeps the cursor at the last message sent
        self._sent_seq = max(self._sent_seq, entry.seq)

    def handle_outgoing_message(self, stream, outgoing_msg):
        channel = stream if isinstance(stream, str) else getattr(stream, "channel", None)
        if channel == "iopub" and self._fed_by_journal:
            return  # the journal delivers iopub
        return super().handle_outgoing_message(stream, outgoing_msg)

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

    def disconnect(self):
        self._detach_journal(save=True)
        return super().disconnect()
