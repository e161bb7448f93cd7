"""Gateway output journal: numbered, replayed once per session on reconnect, bounded in bytes
with a marker saying how much was dropped. Real gateway, real ipykernel."""

from __future__ import annotations

import re
import time

import pytest

from tests.support.kernel_ws import KernelClient

from .output import new_session, numbers, printer, read_for, send_execute, stream_text

pytestmark = pytest.mark.timeout(120)


def start_kernel(gw) -> str:
    r = gw.api("POST", "/api/kernels", json={"name": "python3"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def journal(gw, kid, since=0) -> dict:
    r = gw.api("GET", f"/api/accel/kernels/{kid}/journal?since={since}")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("protocol", ["json", "v1"])
def test_websocket_reconnect_replays_every_line_once(gateway, protocol):
    kid = start_kernel(gateway)
    session = new_session()
    c1 = KernelClient(gateway.url, kid, gateway.token, protocol=protocol, session=session)
    msg_id = send_execute(c1, printer(30, 0.1))
    first = read_for(c1, msg_id, 0.8)
    c1.close()  # the browser goes away mid-cell
    time.sleep(2.0)  # the cell keeps printing meanwhile
    c2 = KernelClient(gateway.url, kid, gateway.token, protocol=protocol, session=session)
    rest = read_for(c2, msg_id, 20, until_idle=True)
    c2.close()
    got = numbers(stream_text(first + rest))
    assert got == list(range(30)), (
        got,
        [
            (m["header"]["msg_type"], m["content"].get("text"), m["content"].get("execution_state"))
            for m in first
        ][:6],
        [(m["header"]["msg_type"], m["content"].get("text")) for m in rest][:4],
    )
    assert rest[-1]["header"]["msg_type"] == "status"
    assert rest[-1]["content"]["execution_state"] == "idle"

    j = journal(gateway, kid)
    assert numbers(
        stream_text([m for m in j["messages"] if m["parent_header"].get("msg_id") == msg_id])
    ) == list(range(30))
    ex = next(e for e in j["executions"] if e["msg_id"] == msg_id)
    assert ex["status"] == "idle" and ex["execution_count"] == 1
    assert ex["code"].startswith("import time") and ex["dropped_messages"] == 0
    seqs = [m["seq"] for m in j["messages"]]
    # last_seq counts the shell replies the journal also keeps (the REST list is iopub only),
    # and the execute_reply may come after the idle status
    assert seqs == sorted(set(seqs)) and j["last_seq"] >= seqs[-1]
    # since= returns only what came after
    later = journal(gateway, kid, since=seqs[-5])
    assert [m["seq"] for m in later["messages"]] == seqs[-4:]


def test_new_session_gets_no_replay(gateway):
    kid = start_kernel(gateway)
    c1 = KernelClient(gateway.url, kid, gateway.token)
    msg_id = send_execute(c1, printer(5, 0.01))
    assert numbers(stream_text(read_for(c1, msg_id, 20, until_idle=True))) == list(range(5))
    c1.close()
    with KernelClient(gateway.url, kid, gateway.token) as c2:  # another session id
        assert read_for(c2, msg_id, 1.0) == []


def test_tiny_bound_drops_oldest_with_marker(gateway_factory):
    gw = gateway_factory("--OutputJournal.max_bytes=30000")
    kid = start_kernel(gw)
    session = new_session()
    c1 = KernelClient(gw.url, kid, gw.token, session=session)
    code = "for i in range(400):\n    print('line', i, 'x' * 200, flush=True)\n"
    msg_id = send_execute(c1, "import time; time.sleep(1)\n" + code)
    assert any(
        m["header"]["msg_type"] == "execute_input"
        for m in read_for(c1, msg_id, 15, stop_at="execute_input")
    )
    c1.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        j = journal(gw, kid)
        ex = [e for e in j["executions"] if e["msg_id"] == msg_id]
        if ex and ex[0]["status"] == "idle":
            break
        time.sleep(0.2)
    ex = ex[0]
    assert j["bytes"] <= 30000 and j["dropped_bytes"] > 0
    assert ex["dropped_messages"] > 0 and ex["execution_count"] == 1
    mine = [m for m in j["messages"] if m["parent_header"].get("msg_id") == msg_id]
    marker = mine[0]
    assert marker["metadata"].get("accel_marker") is True
    said = re.fullmatch(
        r"\[jupyterlab-accel: ([\d.]+) (KB|MB) of output dropped while "
        r"disconnected \((\d+) messages\)\]\n",
        marker["content"]["text"],
    )
    assert said, marker["content"]["text"]
    amount = float(said[1]) * (1024 if said[2] == "KB" else 1024 * 1024)
    assert abs(amount - ex["dropped_bytes"]) <= 0.1 * ex["dropped_bytes"]
    assert int(said[3]) == ex["dropped_messages"]
    kept = numbers(stream_text(mine[1:]).replace(" " + "x" * 200, ""))
    assert kept and kept[-1] == 399 and kept == list(range(kept[0], 400))
    assert mine[-1]["header"]["msg_type"] == "status"  # idle survives at the end

    # the websocket of the same session gets the marker and the survivors, once
    with KernelClient(gw.url, kid, gw.token, session=session) as c2:
        got = read_for(c2, msg_id, 10, until_idle=True)
    assert got[0]["content"]["text"] == marker["content"]["text"]
    assert numbers(stream_text(got[1:]).replace(" " + "x" * 200, "")) == kept


def test_journal_rest_errors(gateway):
    kid = start_kernel(gateway)
    r = gateway.api("GET", f"/api/accel/kernels/{kid}/journal?since=abc")
    assert r.status_code == 400 and "since" in r.json()["message"]
    r = gateway.api("GET", "/api/accel/kernels/00000000-0000-0000-0000-000000000000/journal")
    assert r.status_code == 404
    import requests

    r = requests.get(f"{gateway.url}/api/accel/kernels/{kid}/journal", timeout=10)
    assert r.status_code in (401, 403)
