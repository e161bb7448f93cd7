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
    _sent_seq = 0

    def _journal_of_kernel(self):
        store = getattr(self.multi_kernel_manager, "journal", None)
        return store.get(self.kernel_id) if store is not None else None

    def connect(self):
        connected = super().connect()
        journal = self._journal_of_kernel()
        if journal is None or connected is None:
            return connected
        self._journal = journal
        cursor = journal.cursors.pop(self.session_key, None)
        if cursor is None:
            self._sent_seq = journal.seq  # a new session: from now on, as stock
        else:
            self._sent_seq = cursor
            replay = journal.since(cursor)
            if replay:
                self.log.info("Replaying %d journal message(s) to %s", len(replay),
                              self.session_key)
            for entry in replay:
                self._send_entry(entry, force=True)
        journal.listeners.append(self._send_entry)
        return connected

    def _send_entry(self, entry, force: bool = False) -> None:
        if not force and entry.seq <= self._sent_seq:
            return
        try:
            if self.subprotocol == V1:
                self.write_message(serialize_msg_to_ws_v1(entry.parts, "iopub"), binary=True)
            else:
                unpack = self._journal.unpack
                msg = {"header": entry.header, "parent_header": entry.parent,
                       "metadata": unpack(entry.parts[2]), "content": unpack(entry.parts[3]),
                       "buffers": entry.parts[4:], "channel": "iopub"}
                if msg["buffers"]:
                    self.write_message(serialize_binary_message(msg), binary=True)
                else:
                    self.write_message(json.dumps(msg, default=json_default))
        except WebSocketClosedError:
            return  # disconnect() keeps the cursor at the last message sent
        self._sent_seq = max(self._sent_seq, entry.seq)

    def handle_outgoing_message(self, stream, outgoing_msg):
        channel = stream if isinstance(stream, str) else getattr(stream, "channel", None)
        if channel == "iopub" and self._journal is not None:
            return  # the journal delivers iopub
        return super().handle_outgoing_message(stream, outgoing_msg)

    def disconnect(self):
        journal = self._journal
        if journal is not None:
            self._journal = None
            if self._send_entry in journal.listeners:
                journal.listeners.remove(self._send_entry)
            journal.cursors[self.session_key] = self._sent_seq
            while len(journal.cursors) > MAX_CURSORS:
                journal.cursors.pop(next(iter(journal.cursors)))
        return super().disconnect()
