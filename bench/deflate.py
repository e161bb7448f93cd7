"""permessage-deflate on the server <-> runtime websocket: time saved on slow links against the
CPU it costs, for choosing the relay's `compression` default.

    python -m bench.deflate [--profiles lan,region,far] [--text-size 50M] [--html-size 20M]

A tornado websocket client (what the relay uses upstream) talks to our gateway across the link
emulator, with and without `compression_options`, and runs the text and DataFrame-HTML cells of
bench.link. Reported: seconds, bytes that crossed the link, and CPU seconds of the gateway (it
compresses the output) and of this client (it inflates, as the relay would).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from bench.link import HTML_CELL, HTML_SETUP, TEXT_CELL, TEXT_SETUP, deflate_config
from bench.linkemu import PROFILES, LinkProcess
from bench.transport import parse_size
from tests.support.procs import start_gateway


def _request(code: str, session: str) -> str:
    return json.dumps(
        {
            "header": {
                "msg_id": uuid.uuid4().hex,
                "msg_type": "execute_request",
                "username": "bench",
                "session": session,
                "date": "",
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": {
                "code": code,
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
            "channel": "shell",
        }
    )


async def run_cell(conn, code: str, session: str, timeout: float = 600) -> int:
    """Execute code over the legacy JSON protocol; bytes of output text received."""
    req = _request(code, session)
    msg_id = json.loads(req)["header"]["msg_id"]
    await conn.write_message(req)
    got, idle, reply = 0, False, False
    deadline = time.monotonic() + timeout
    while not (idle and reply):
        raw = await asyncio.wait_for(conn.read_message(), deadline - time.monotonic())
        if raw is None:
            raise ConnectionError("websocket closed")
        m = json.loads(raw)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        t = m["header"]["msg_type"]
        if t == "stream":
            got += len(m["content"]["text"])
        elif t == "display_data":
            got += len(m["content"]["data"].get("text/html", ""))
        elif t == "execute_reply":
            reply = True
        elif t == "status" and m["content"]["execution_state"] == "idle":
            idle = True
    return got


def cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


async def measure(gw, link, kernel_id: str, compress: bool, cells: dict) -> list[dict]:
    url = link.url.replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels"
    session = uuid.uuid4().hex
    conn = await websocket_connect(
        HTTPRequest(url + f"?session_id={session}", headers=gw.headers),
        max_message_size=sys.maxsize,
        compression_options={} if compress else None,
    )
    conn.protocol.set_nodelay(True)
    negotiated = conn.protocol._compressor is not None  # tornado keeps no public flag
    rows = []
    try:
        for name, code in cells.items():
            link.reset()
            g0, c0, t0 = cpu(gw.pid), cpu(psutil.Process().pid), time.perf_counter()
            got = await run_cell(conn, code, session)
            dt = time.perf_counter() - t0
            st = link.stats()
            rows.append(
                {
                    "output": name,
                    "compress": compress,
                    "negotiated": negotiated,
                    "seconds": dt,
                    "bytes": got,
                    "wire_bytes": st["down_bytes"],
                    "gateway_cpu": cpu(gw.pid) - g0,
                    "client_cpu": cpu(psutil.Process().pid) - c0,
                }
            )
    finally:
        conn.close()
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--profiles", default="lan,region,far")
    ap.add_argument("--text-size", default="50M")
    ap.add_argument("--html-size", default="20M")
    ap.add_argument("--level", type=int, default=1, help="zlib level the gateway compresses at")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    text, html = parse_size(args.text_size), parse_size(args.html_size)
    out = []
    with tempfile.TemporaryDirectory(prefix="accel-deflate-") as tmp:
        gw_dir = Path(tmp) / "gw"
        gw = start_gateway(gw_dir, deflate_config(gw_dir, args.level))
        link = LinkProcess(gw.port, profile="lan")
        try:
            r = requests.post(
                gw.url + "/api/kernels", json={"name": "python3"}, headers=gw.headers, timeout=60
            )
            r.raise_for_status()
            kid = r.json()["id"]
            setup = TEXT_SETUP.replace("SIZE", str(text)) + HTML_SETUP.replace("SIZE", str(html))
            asyncio.run(measure(gw, link, kid, False, {"setup": setup}))
            cells = {"text": TEXT_CELL, "html": HTML_CELL}
            for profile in args.profiles.split(","):
                link.set_profile(profile)
                for compress in (False, True):
                    out += [
                        {"profile": profile, **row}
                        for row in asyncio.run(measure(gw, link, kid, compress, cells))
                    ]
        finally:
            link.close()
            gw.stop()
    print(
        "\n| link | output | deflate | negotiated | seconds | MB/s of output | x link bandwidth | "
        "wire MB | gateway CPU (s) | client CPU (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in out:
        rate = PROFILES[r["profile"]].rate
        mbps = r["bytes"] / r["seconds"]
        print(
            f"| {r['profile']} | {r['output']} | {'on' if r['compress'] else 'off'} | "
            f"{r['negotiated']} | {r['seconds']:.2f} | {mbps / 1e6:.1f} | {mbps / rate:.2f} | "
            f"{r['wire_bytes'] / 1e6:.1f} | {r['gateway_cpu']:.2f} | {r['client_cpu']:.2f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
