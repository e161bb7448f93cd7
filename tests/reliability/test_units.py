"""The journal ring and the relay's dedupe without servers: bounds, markers, since, rewind."""

from __future__ import annotations

import json

from accel_gateway.journal import KernelJournal, marker_text
from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1

from jupyterlab_accel.reconnect import SeenIds, backoff, frame_msg_id, notice_frame

pack = lambda o: json.dumps(o).encode()  # noqa: E731
unpack = json.loads


def msg(i: int, parent: str, msg_type: str = "stream", content: dict | None = None) -> list:
    header = {"msg_id": f"m{i}", "msg_type": msg_type}
    parent_header = {"msg_id": parent, "msg_type": "execute_request"}
    return [
        pack(header),
        pack(parent_header),
        pack({}),
        pack(content if content is not None else {"name": "stdout", "text": "x" * 100}),
    ]


def test_ring_bound_drops_oldest_and_marks_once():
    j = KernelJournal("k", max_bytes=2000, max_executions=10, pack=pack, unpack=unpack)
    j.record(msg(0, "e1", "execute_input", {"code": "print()", "execution_count": 3}))
    for i in range(1, 40):
        j.record(msg(i, "e1"))
    j.record(msg(40, "e1", "status", {"execution_state": "idle"}))
    assert j.bytes <= 2000 and j.dropped_messages > 0
    ex = j.executions["e1"]
    assert (ex.code, ex.execution_count, ex.status) == ("print()", 3, "idle")
    assert ex.dropped_messages == j.dropped_messages and ex.dropped_bytes == j.dropped_bytes
    out = j.since(0)
    assert out[0].header["msg_id"] == f"accel-marker-e1-{ex.dropped_until}"
    assert unpack(out[0].parts[3])["text"] == marker_text(ex.dropped_messages, ex.dropped_bytes)
    assert [e.seq for e in out[1:]] == list(range(j.first_seq, j.seq + 1))
    # a client that already had everything up to the drop gets no marker
    assert all(not e.header["msg_id"].startswith("accel-marker") for e in j.since(j.first_seq))
    body = j.to_json(0)
    assert body["messages"][0]["metadata"] == {"accel_marker": True}
    assert body["executions"][0]["dropped_bytes"] == ex.dropped_bytes


def test_executions_bounded_and_listeners_live():
    j = KernelJournal("k", max_bytes=10**6, max_executions=3, pack=pack, unpack=unpack)
    seen = []
    j.listeners.append(lambda e: seen.append(e.seq))
    for n in range(5):
        j.record(msg(n, f"e{n}", "status", {"execution_state": "busy"}))
    assert list(j.executions) == ["e2", "e3", "e4"] and seen == [1, 2, 3, 4, 5]


def test_rewind_stays_within_window_and_floor():
    j = KernelJournal("k", max_bytes=10**6, max_executions=10, pack=pack, unpack=unpack)
    for i in range(10):
        j.record(msg(i, "e"))
    for e in j.entries:
        e.t = float(e.seq)  # one per second
    assert j.rewind(8, until=8.0, seconds=3) == 4  # re-send seqs 5..8
    assert j.rewind(8, until=8.0, seconds=3, floor=6) == 6
    assert j.rewind(8, until=20.0, seconds=3) == 8  # nothing sent in the window: no overlap


def test_relay_dedupe_skips_repeats_until_first_new():
    seen = SeenIds(size=100)
    frames = [
        serialize_msg_to_ws_v1([pack({"msg_id": f"m{i}"}), b"{}", b"{}", b"{}"], "iopub")
        for i in range(6)
    ]
    assert frame_msg_id(frames[2]) == "m2"
    assert frame_msg_id(json.dumps({"header": {"msg_id": "j1"}, "content": {}})) == "j1"
    assert [seen.is_repeat(f) for f in frames[:4]] == [False] * 4
    seen.deduping = True  # reconnected: the runtime re-sends m2, m3, then new ones
    assert [seen.is_repeat(f) for f in (frames[2], frames[3], frames[4], frames[5])] == [
        True,
        True,
        False,
        False,
    ]
    assert seen.deduping is False


def test_backoff_and_notice_frames():
    assert [backoff(i, 0.25, 4) for i in range(7)] == [0.25, 0.5, 1, 2, 4, 4, 4]
    legacy = json.loads(notice_frame("", "runtime_lost", "gone", runtime="a", retrying=True))
    assert legacy["channel"] == "iopub" and legacy["header"]["msg_type"] == "accel_notice"
    assert legacy["content"] == {
        "kind": "runtime_lost",
        "message": "gone",
        "runtime": "a",
        "retrying": True,
    }
    v1 = notice_frame("v1.kernel.websocket.jupyter.org", "reconnected", "ok")
    assert isinstance(v1, bytes) and frame_msg_id(v1).startswith("accel-")
