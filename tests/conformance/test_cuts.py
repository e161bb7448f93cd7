"""Nothing a kernel sends is lost across a cut link, on each leg: a cell that finishes during
the cut, a cell in input() during the cut, an interrupt sent during the cut, comm traffic
during the cut. After reconnect (same session id) the client holds every message of the
execution once, in order, replies included, and the cell ends idle with its count.

Paths (conftest.cut_paths): client <-> our gateway; client <-> server+extension <-> gateway,
cut on the client's leg or on the gateway's; client <-> stock `jupyter server --gateway-url`
<-> our gateway, cut on the gateway's leg."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.support.kernel_ws import KernelClient

from .wire import Reader, done, dump, execute_request, once_in_order, request

pytestmark = pytest.mark.timeout(120)

CUT_SECONDS = 3.0
PATHS = ("gateway", "full_client_leg", "full_gateway_leg", "stock_server_gateway_url")


class Link:
    """A client on one cut path: connect, cut the path's link, restore, reconnect."""

    def __init__(self, path, protocol: str):
        self.path, self.protocol = path, protocol
        self.kid = path.target.start_kernel()
        self.session = uuid.uuid4().hex
        self.readers: list[Reader] = []
        self.connect()

    @property
    def reader(self) -> Reader:
        return self.readers[-1]

    def connect(self) -> Reader:
        c = KernelClient(
            self.path.client_url,
            self.kid,
            self.path.target.token,
            protocol=self.protocol,
            session=self.session,
        )
        self.readers.append(Reader(c))
        return self.reader

    def send(self, msg: dict) -> None:
        self.reader.client.send(msg)

    @property
    def client_side(self) -> bool:
        return self.path.client_proxy is not None

    def cut(self) -> None:
        (self.path.client_proxy or self.path.upstream_proxy).cut()

    def restore(self) -> None:
        (self.path.client_proxy or self.path.upstream_proxy).restore()
        if self.client_side:  # the client's own socket died: it reconnects, same session
            deadline = time.monotonic() + 20
            while True:
                try:
                    self.connect()
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)

    def messages(self) -> list[dict]:
        return [m for r in self.readers for m in r.messages]

    def of(self, msg_id: str) -> list[dict]:
        return [m for m in self.messages() if m["parent_header"].get("msg_id") == msg_id]

    def until(self, pred, seconds: float = 30) -> bool:
        return self.reader.until(lambda _: pred(self.messages()), seconds)

    def close(self) -> None:
        for r in self.readers:
            r.client.close()
        self.path.target.api("DELETE", f"/api/kernels/{self.kid}")


@pytest.fixture(params=PATHS)
def link_factory(request, cut_paths):
    links = []

    def make(protocol: str = "json") -> Link:
        link = Link(cut_paths[request.param], protocol)
        links.append(link)
        return link

    make.path = request.param
    yield make
    for link in links:
        (link.path.client_proxy or link.path.upstream_proxy).restore()
        link.close()


def types(messages: list[dict]) -> list[str]:
    out = []
    for m in messages:
        t = m["header"]["msg_type"]
        if t == "status":
            t += ":" + m["content"]["execution_state"]
        if t == "stream":
            t += ":" + m["content"]["text"].strip()
        out.append(t)
    return out


def assert_whole(link: Link, msg_id: str, expect_iopub: list[str], reply_status: str = "ok"):
    mine = link.of(msg_id)
    assert not once_in_order(mine), ("repeated", dump(types(mine)))
    iopub = [t for m, t in zip(mine, types(mine)) if m["channel"] == "iopub"]
    assert iopub == expect_iopub, dump(types(mine))
    replies = [m for m in mine if m["header"]["msg_type"] == "execute_reply"]
    assert len(replies) == 1, dump(types(mine))
    assert replies[0]["content"]["status"] == reply_status, replies[0]["content"]
    return replies[0]["content"]


def wait_execute_input(link: Link, msg_id: str) -> None:
    assert link.until(
        lambda ms: any(
            m["parent_header"].get("msg_id") == msg_id
            and m["header"]["msg_type"] == "execute_input"
            for m in ms
        ),
        20,
    ), dump(types(link.messages()))


@pytest.mark.parametrize("protocol", ["json", "v1"])
def test_cell_finishing_during_cut(link_factory, protocol):
    if link_factory.path == "stock_server_gateway_url" and protocol == "v1":
        pytest.skip("stock --gateway-url speaks only the legacy protocol upstream")
    link = link_factory(protocol)
    req = execute_request(
        f"import time\nprint('a', flush=True)\ntime.sleep({CUT_SECONDS - 1.5})\nprint('b')",
        link.session,
    )
    link.send(req)
    mid = req["header"]["msg_id"]
    assert link.until(lambda ms: any(m["content"].get("text") == "a\n" for m in ms), 20)
    link.cut()
    time.sleep(CUT_SECONDS)  # the cell prints and finishes meanwhile
    link.restore()
    assert link.until(done(mid, "execute_reply"), 30), dump(types(link.of(mid)))
    link.reader.read(0.3)
    reply = assert_whole(
        link, mid, ["status:busy", "execute_input", "stream:a", "stream:b", "status:idle"]
    )
    assert reply["execution_count"] == 1


def test_input_during_cut(link_factory):
    link = link_factory()
    req = execute_request(
        f"import time\ntime.sleep({CUT_SECONDS - 1.5})\nx = input('name? ')\nprint('hi', x)",
        link.session,
        allow_stdin=True,
    )
    link.send(req)
    mid = req["header"]["msg_id"]
    wait_execute_input(link, mid)
    link.cut()
    time.sleep(CUT_SECONDS)  # input_request is sent while the link is down
    link.restore()
    assert link.until(lambda ms: any(m["header"]["msg_type"] == "input_request" for m in ms), 30), (
        dump(types(link.messages()))
    )
    ask = next(m for m in link.messages() if m["header"]["msg_type"] == "input_request")
    answer = request("input_reply", {"value": "bob"}, link.session, channel="stdin")
    answer["parent_header"] = ask["header"]
    link.send(answer)
    assert link.until(done(mid, "execute_reply"), 30), dump(types(link.of(mid)))
    link.reader.read(0.3)
    assert_whole(link, mid, ["status:busy", "execute_input", "stream:hi bob", "status:idle"])
    assert [m["header"]["msg_type"] for m in link.messages()].count("input_request") == 1


def test_interrupt_during_cut(link_factory):
    if link_factory.path == "stock_server_gateway_url":
        pytest.skip("stock --gateway-url drops client messages while it reconnects")
    link = link_factory()
    req = execute_request("import time\ntime.sleep(60)", link.session)
    link.send(req)
    mid = req["header"]["msg_id"]
    wait_execute_input(link, mid)
    link.cut()
    interrupt = request("interrupt_request", {}, link.session, channel="control")
    if not link.client_side:
        link.send(interrupt)  # the client's socket is up: the relay holds it
    time.sleep(1.0)
    link.restore()
    if link.client_side:
        link.send(interrupt)  # a client queues what it sends while down (as services does)
    iid = interrupt["header"]["msg_id"]
    assert link.until(done(mid, "execute_reply"), 30), dump(types(link.of(mid)))
    assert link.until(lambda ms: any(m["parent_header"].get("msg_id") == iid for m in ms), 10), (
        dump(types(link.messages()))
    )
    link.reader.read(0.3)
    reply = assert_whole(
        link, mid, ["status:busy", "execute_input", "error", "status:idle"], reply_status="error"
    )
    assert reply["ename"] == "KeyboardInterrupt"
    replies = [m for m in link.of(iid) if m["header"]["msg_type"] == "interrupt_reply"]
    assert len(replies) == 1 and replies[0]["channel"] == "control"


COMM_TICKER = """
import time
from comm import create_comm
c = create_comm(target_name="ticker", data={})
for i in range(8):
    c.send({"i": i})
    time.sleep(%s)
"""


def test_comms_during_cut(link_factory):
    link = link_factory()
    req = execute_request(COMM_TICKER % (CUT_SECONDS / 6), link.session)
    link.send(req)
    mid = req["header"]["msg_id"]
    assert link.until(lambda ms: any(m["header"]["msg_type"] == "comm_msg" for m in ms), 20), dump(
        types(link.messages())
    )
    link.cut()
    time.sleep(CUT_SECONDS)
    link.restore()
    assert link.until(done(mid, "execute_reply"), 30), dump(types(link.of(mid)))
    link.reader.read(0.3)
    mine = link.of(mid)
    assert not once_in_order(mine), dump(types(mine))
    ticks = [m["content"]["data"]["i"] for m in mine if m["header"]["msg_type"] == "comm_msg"]
    assert ticks == list(range(8)), dump(types(mine))


def test_output_during_cut(link_factory):
    """Output flowing when the link breaks (frames in flight on every hop)."""
    link = link_factory()
    req = execute_request(
        "import time\nfor i in range(30):\n    print('line', i, flush=True)\n    time.sleep(0.1)",
        link.session,
    )
    link.send(req)
    mid = req["header"]["msg_id"]
    assert link.until(lambda ms: any("line 3" in m["content"].get("text", "") for m in ms), 20)
    link.cut()
    time.sleep(1.5)
    link.restore()
    assert link.until(done(mid, "execute_reply"), 30), dump(types(link.of(mid)))
    link.reader.read(0.3)
    mine = link.of(mid)
    assert not once_in_order(mine), dump(types(mine))
    text = "".join(m["content"]["text"] for m in mine if m["header"]["msg_type"] == "stream")
    assert text == "".join(f"line {i}\n" for i in range(30)), dump(types(mine))
