"""The one scenario list of the conformance suite. Each scenario drives a real kernel on one
target through plain websocket clients and returns what a client saw: per-channel traces,
frame shapes, and the facts the scenario is about. test_wire.py runs every scenario on every
target and compares them with stock jupyter_server's."""

from __future__ import annotations

import time
import uuid

from tests.support.kernel_ws import KernelClient

from .wire import Reader, done, execute_request, request, shapes, trace

BUFFER = b"\x00\x01\x02\xff"

DISPLAY_WITH_BUFFERS = f"""
import sys
print("out line", flush=True)
print("err line", file=sys.stderr, flush=True)
dp = get_ipython().display_pub
m = dp.session.msg("display_data", {{"data": {{"text/plain": "buffered"}}, "metadata": {{}},
    "transient": {{}}}}, parent=dp.parent_header)
dp.session.send(dp.pub_socket, m, ident=dp.topic, buffers=[{BUFFER!r}])
1 / 0
"""

COMM_TARGET = """
def _conf_target(comm, open_msg):
    @comm.on_msg
    def _echo(msg):
        comm.send({"echo": msg["content"]["data"]["x"]})
get_ipython().kernel.comm_manager.register_target("conf", _conf_target)
"""

KERNEL_OPENS_COMM = """
from comm import create_comm
c = create_comm(target_name="client_target", data={"hello": 1})
c.send({"n": 2})
"""


def client(target, kid: str, protocol: str, session: str | None = None) -> KernelClient:
    return KernelClient(target.url, kid, target.token, protocol=protocol, session=session)


def result(messages: list, **facts) -> dict:
    return {"trace": trace(messages), "shapes": shapes(messages), "facts": facts}


def run_execute(reader: Reader, code: str, timeout: float = 30, **kw) -> tuple[str, list]:
    req = execute_request(code, reader.client.session, **kw)
    reader.client.send(req)
    msg_id = req["header"]["msg_id"]
    assert reader.until(done(msg_id, "execute_reply"), timeout), reader.messages[-5:]
    return msg_id, reader.of(msg_id)


def reply_of(messages: list, reply_type: str) -> dict:
    return next(m for m in messages if m["header"]["msg_type"] == reply_type)


# -- scenarios ------------------------------------------------------------------------------


def kernel_info(target, kid, protocol) -> dict:
    with client(target, kid, protocol) as c:
        r = Reader(c)
        req = request("kernel_info_request", {}, c.session)
        c.send(req)
        mid = req["header"]["msg_id"]
        assert r.until(done(mid, "kernel_info_reply")), r.messages
        mine = r.of(mid)
        reply = reply_of(mine, "kernel_info_reply")["content"]
        return result(
            mine,
            status=reply["status"],
            language=reply["language_info"]["name"],
            protocol_version=reply["protocol_version"].split(".")[0],
        )


def execute_outputs(target, kid, protocol) -> dict:
    with client(target, kid, protocol) as c:
        r = Reader(c)
        _, mine = run_execute(r, DISPLAY_WITH_BUFFERS)
        display = next(m for m in mine if m["header"]["msg_type"] == "display_data")
        reply = reply_of(mine, "execute_reply")["content"]
        streams = [
            (m["content"]["name"], m["content"]["text"])
            for m in mine
            if m["header"]["msg_type"] == "stream"
        ]
        return result(
            mine,
            streams=sorted(streams),
            buffers=[bytes(b).hex() for b in display["buffers"]],
            reply_status=reply["status"],
            ename=reply.get("ename"),
            error_ename=reply_of(mine, "error")["content"]["ename"],
        )


def comms(target, kid, protocol) -> dict:
    with client(target, kid, protocol) as c:
        r = Reader(c)
        run_execute(r, COMM_TARGET)
        comm_id = uuid.uuid4().hex
        opened = request(
            "comm_open", {"comm_id": comm_id, "target_name": "conf", "data": {}}, c.session
        )
        c.send(opened)
        msg = request("comm_msg", {"comm_id": comm_id, "data": {"x": 41}}, c.session)
        c.send(msg)
        mid = msg["header"]["msg_id"]
        assert r.until(
            lambda ms: any(
                m["header"]["msg_type"] == "comm_msg" and m["parent_header"].get("msg_id") == mid
                for m in ms
            )
        ), r.messages[-5:]
        echo = next(m for m in r.of(mid) if m["header"]["msg_type"] == "comm_msg")
        # the kernel opens a comm towards the client
        exec_id, mine = run_execute(r, KERNEL_OPENS_COMM)
        kopen = next(m for m in mine if m["header"]["msg_type"] == "comm_open")
        r.read(0.3)
        close = request("comm_close", {"comm_id": comm_id, "data": {}}, c.session)
        c.send(close)
        r.until(done(close["header"]["msg_id"], "status"), 5)
        seen = r.of(opened["header"]["msg_id"]) + r.of(mid) + mine
        return result(
            seen,
            echo=echo["content"]["data"],
            kernel_comm_target=kopen["content"]["target_name"],
            kernel_comm_data=kopen["content"]["data"],
            kernel_comm_msgs=[
                m["content"]["data"] for m in mine if m["header"]["msg_type"] == "comm_msg"
            ],
        )


def stdin_input(target, kid, protocol) -> dict:
    with client(target, kid, protocol) as c:
        r = Reader(c)
        req = execute_request("x = input('name? ')\nprint('hi', x)", c.session, allow_stdin=True)
        c.send(req)
        mid = req["header"]["msg_id"]
        assert r.until(lambda ms: any(m["header"]["msg_type"] == "input_request" for m in ms)), (
            r.messages
        )
        ask = next(m for m in r.messages if m["header"]["msg_type"] == "input_request")
        answer = request("input_reply", {"value": "bob"}, c.session, channel="stdin")
        answer["parent_header"] = ask["header"]
        c.send(answer)
        assert r.until(done(mid, "execute_reply")), r.messages
        mine = r.of(mid)
        return result(
            mine,
            prompt=ask["content"]["prompt"],
            stdout="".join(
                m["content"]["text"] for m in mine if m["header"]["msg_type"] == "stream"
            ),
        )


def interrupt(target, kid, protocol) -> dict:
    with client(target, kid, protocol) as c:
        r = Reader(c)
        req = execute_request("import time\ntime.sleep(30)", c.session)
        c.send(req)
        mid = req["header"]["msg_id"]
        assert r.until(lambda ms: any(m["header"]["msg_type"] == "execute_input" for m in ms)), (
            r.messages
        )
        time.sleep(0.3)
        resp = target.api("POST", f"/api/kernels/{kid}/interrupt")
        assert r.until(done(mid, "execute_reply"), 20), r.messages[-5:]
        mine = r.of(mid)
        reply = reply_of(mine, "execute_reply")["content"]
        return result(
            mine, http=resp.status_code, reply_status=reply["status"], ename=reply.get("ename")
        )


def restart(target, kid, protocol) -> dict:
    with client(target, kid, protocol) as c:
        r = Reader(c)
        run_execute(r, "a = 1")
        before = len(r.messages)
        resp = target.api("POST", f"/api/kernels/{kid}/restart")
        r.read(1.5)
        around = [m for m in r.messages[before:] if not m["parent_header"]]
        _, mine = run_execute(r, "a = 41\na + 1")
        value = next(m for m in mine if m["header"]["msg_type"] == "execute_result")
        return result(
            mine,
            http=resp.status_code,
            restarting_seen=any(
                m["header"]["msg_type"] == "status"
                and m["content"]["execution_state"] == "restarting"
                for m in around
            ),
            value=value["content"]["data"]["text/plain"],
            execution_count=value["content"]["execution_count"],
            same_socket=not r.closed,
        )


def shutdown(target, kid, protocol) -> dict:
    c = client(target, kid, protocol)
    r = Reader(c)
    run_execute(r, "1")
    before = len(r.messages)
    resp = target.api("DELETE", f"/api/kernels/{kid}")
    r.read(1.5)
    after = [
        m for m in r.messages[before:] if m["parent_header"].get("msg_type") == "shutdown_request"
    ]
    c.close()
    return result(
        [],
        http=resp.status_code,
        socket_closed=r.closed,
        after=[
            m["header"]["msg_type"] + ":" + m["content"].get("execution_state", "") for m in after
        ],
    )


def two_clients(target, kid, protocol) -> dict:
    with client(target, kid, protocol) as a, client(target, kid, protocol) as b:
        ra, rb = Reader(a), Reader(b)
        for c, r in ((a, ra), (b, rb)):  # as clients do on connect: channels are live after
            info = request("kernel_info_request", {}, c.session)
            c.send(info)
            assert r.until(done(info["header"]["msg_id"], "kernel_info_reply")), r.messages
        mid, mine = run_execute(ra, "print('from a')")
        assert rb.until(
            lambda ms: any(
                m["parent_header"].get("msg_id") == mid
                and m["header"]["msg_type"] == "status"
                and m["content"]["execution_state"] == "idle"
                for m in ms
            ),
            10,
        )
        rb.read(0.5)
        theirs = rb.of(mid)
        return {
            "trace": {"a": trace(mine), "b": trace(theirs)},
            "shapes": shapes(mine + theirs),
            "facts": {"b_got_reply": any(m["channel"] != "iopub" for m in theirs)},
        }


SCENARIOS = {
    "kernel_info": kernel_info,
    "execute_stream_display_buffers_error": execute_outputs,
    "comms_both_ways": comms,
    "input": stdin_input,
    "interrupt": interrupt,
    "restart_same_websocket": restart,
    "shutdown_client_attached": shutdown,
    "two_clients": two_clients,
}
# Scenarios that end their kernel (the others share one kernel per target and protocol).
OWN_KERNEL = {"restart_same_websocket", "shutdown_client_attached"}
# Scenarios whose frames differ by protocol run on both; the others on legacy JSON only.
BOTH_PROTOCOLS = {"kernel_info", "execute_stream_display_buffers_error", "comms_both_ways", "input"}
