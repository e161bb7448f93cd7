"""`python -m bench.link --quick`: every path and operation over the `far` link, CI-sized."""

from __future__ import annotations

from bench import link

# Requests a start does not wait for: a kernelspec listing's health checks running meanwhile.
OFF_PATH = ("GET /api/kernelspecs", "GET /api/accel/runtime")


def all_ok(row: dict) -> bool:
    done, runs = row["ok"].split("/")
    return done == runs != "0"


def test_link_bench_quick(capsys):
    out = link.main(["--quick"])
    # The stock stack's own faults (e.g. --gateway-url losing a reply on a slow link) are
    # figures of the comparison, reported in the table; ours may have none.
    assert [e for e in out["errors"] if " stock " not in e] == [], out["errors"]
    rows = {(r["op"], r["path"]): r for r in out["rows"]}
    paths = {r["path"] for r in out["rows"]}
    assert {"stock --gateway-url", "stock KG direct"} <= paths
    ours = "jupyterlab-accel full path"
    for op in ("cell", "start", "change", "text", "html"):
        for path in (ours, "stock --gateway-url", "stock KG direct"):
            r = rows[(op, path)]
            if path == ours:
                assert all_ok(r), r
            elif not all_ok(r):
                continue  # a stock failure, listed in errors
            # Nothing crosses an 80 ms link faster than its round trip.
            assert r["seconds"] >= 0.08 and r["exchanges"] >= 1, r
    for op in ("upload", "listing"):
        for path in (ours, "stock jupyter_server across the link"):
            assert all_ok(rows[(op, path)]), rows[(op, path)]
    # A cell is one exchange on an open websocket: a link RTT plus the kernel, not several.
    assert rows[("cell", ours)]["exchanges"] == 1
    assert rows[("cell", ours)]["rtts"] < 3, rows[("cell", ours)]
    # Bulk outputs are measured against the link's bandwidth and cannot exceed it uncompressed.
    assert 0 < rows[("text", ours)]["fraction"] <= 1.05
    # Compression (negotiated with our gateway) puts more text through the same link.
    packed = rows[("text", ours + " + compression")]
    assert all_ok(packed) and packed["fraction"] > rows[("text", ours)]["fraction"], packed
    # Round trips: a start is the POST, the websocket's Upgrade on a kept-alive connection and
    # the cell (no health check or model GET of its own, no new TCP connection after the first);
    # Change runtime type opens no connection per request either.
    start = rows[("start", ours)]
    on_path = [
        r
        for r in out["samples"][ours]["far"]["start"][0]["requests"]
        if not any(p in r for p in OFF_PATH)
    ]
    assert len(on_path) <= 3 and start["conns"] <= 1, (start, on_path)
    # (other requests of the same moment, file sync's and health checks, may open one or two,
    # and a change sends the new runtime file sync's push beside the POST, the old one its
    # DELETE beside a last pull: before keep-alive a change opened 22, every upload chunk one)
    change = rows[("change", ours)]
    assert change["conns"] <= 5 and change["conns"] < change["exchanges"], change
    assert rows[("upload", ours)]["conns"] < 4, rows[("upload", ours)]  # 4 chunks
    printed = capsys.readouterr().out
    assert "### `far`: RTT 80 ms, 50 Mbit/s" in printed and "| Files listing |" in printed
