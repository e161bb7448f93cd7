"""The journal's reply records, without processes: each session's replies merged with iopub
in arrival order, never another session's, bounded by the same ring with the same marker."""

from __future__ import annotations

import json

from accel_gateway.journal import KernelJournal


def pack(obj) -> bytes:
    return json.dumps(obj).encode()


def unpack(data: bytes):
    return json.loads(data)


def parts(msg_type: str, msg_id: str, parent: dict, content: dict, pad: int = 0) -> list:
    header = {"msg_id": msg_id, "msg_type": msg_type, "session": "k", "date": "", "version": "5.3"}
    return [pack(header), pack(parent), pack({}), pack({**content, "pad": "x" * pad})]


def execution(journal: KernelJournal, rid: str, session: str, pad: int = 0) -> dict:
    parent = {"msg_id": rid, "msg_type": "execute_request", "session": session}
    journal.record(parts("status", f"{rid}-busy", parent, {"execution_state": "busy"}))
    journal.record(parts("stream", f"{rid}-out", parent, {"name": "stdout", "text": "x"}, pad))
    journal.record(
        parts("execute_reply", f"{rid}-reply", parent, {"status": "ok"}), "shell", session
    )
    journal.record(parts("status", f"{rid}-idle", parent, {"execution_state": "idle"}))
    return parent


def types(entries) -> list[str]:
    return [e.header["msg_id"] for e in entries]


def test_replies_replay_only_to_their_session_in_arrival_order():
    j = KernelJournal("k", 1 << 20, 100, pack, unpack)
    execution(j, "a1", "A")
    execution(j, "b1", "B")
    assert types(j.since(0, "A")) == [
        "a1-busy",
        "a1-out",
        "a1-reply",
        "a1-idle",
        "b1-busy",
        "b1-out",
        "b1-idle",
    ]
    assert "b1-reply" in types(j.since(0, "B")) and "a1-reply" not in types(j.since(0, "B"))
    assert [m["header"]["msg_id"] for m in j.to_json(0)["messages"]].count("a1-reply") == 0


def test_replies_are_bounded_with_the_drop_marker():
    j = KernelJournal("k", 4000, 100, pack, unpack)
    execution(j, "a1", "A", pad=3000)  # its output and reply are pushed out by the next one
    execution(j, "a2", "A", pad=3000)
    assert j.bytes <= 4000
    replay = j.since(0, "A")
    ids = types(replay)
    assert "a1-reply" not in ids and "a2-reply" in ids
    markers = [e for e in replay if e.header["msg_id"].startswith("accel-marker-a1")]
    assert len(markers) == 1
    assert "dropped while disconnected" in unpack(markers[0].parts[3])["text"]


class FakeStream:
    """Stands in for a ZMQStream: what park/take_parked call."""

    def __init__(self):
        self.callback, self.is_closed = None, False

    def on_recv(self, callback):
        self.callback = callback

    def stop_on_recv(self):
        self.callback = None

    def close(self):
        self.is_closed = True

    def closed(self):
        return self.is_closed


def channels() -> dict:
    return {name: FakeStream() for name in ("shell", "control", "stdin")}


def feed(msg_list):
    return [], msg_list


def test_parked_sessions_are_bounded_and_record_their_replies():
    j = KernelJournal("k", 1 << 20, 100, pack, unpack)
    first, second, third = channels(), channels(), channels()
    j.park("A", first, [1], 2, feed)
    j.park("B", second, [1], 2, feed)
    j.park("C", third, [1], 2, feed)
    assert all(s.closed() for s in first.values()) and list(j.parked) == ["B", "C"]
    parent = {"msg_id": "r", "msg_type": "execute_request"}
    second["shell"].callback([b"sig", *parts("execute_reply", "r-reply", parent, {})])
    assert [(e.session, e.channel) for e in j.since(0, "B")] == [("B", "shell")]
    assert j.take_parked("B", [2]) is None  # restarted with new ports: closed, not reused
    assert all(s.closed() for s in second.values())
    assert j.take_parked("C", [1]) is third and third["shell"].callback is None
