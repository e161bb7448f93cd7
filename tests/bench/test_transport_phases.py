"""The transport benchmark's later phases, CI-sized, against real servers and gateways:
change runtime (1 round), metrics fan-out (1 vs 50 watchers, 2 s), chunked upload (8 MB)."""

from __future__ import annotations

from argparse import Namespace

from bench import phases
from bench.transport import start_accel_server


def test_change_fanout_upload_small(tmp_path, capsys):
    args = Namespace(rounds=1, upload_size="8M", upload_rounds=1, fanout_seconds=2.0)
    out = phases.run(tmp_path, {"change", "fanout", "upload"}, args, start_accel_server)

    change = {r["target"].split(" ")[0]: r for r in out["change"]}
    assert change["stock"]["ok"] == "1/1" and change["jupyterlab-accel"]["ok"] == "1/1"
    assert 0 < change["jupyterlab-accel"]["patch_s"] <= change["jupyterlab-accel"]["total_s"]

    rows = {(r["path"].split(" ")[0], r["watchers"]): r for r in out["fanout"]}
    assert set(rows) == {("server", 1), ("server", 50), ("gateway", 1), ("gateway", 50)}
    for r in rows.values():
        assert r["errors"] == 0 and r["per_watcher_median"] >= 2, r
        # one sampler: the number of samples follows the clock, not the watchers
        assert r["upstream_samples"] <= r["expected_samples"] + 4, r

    up = {r["target"].split(" ")[0]: r for r in out["upload"]["rows"]}
    assert out["upload"]["size"] == 8_000_000
    for r in up.values():
        assert r["ok"] == "1/1" and r["MBps"] > 0, r
    assert up["jupyterlab-accel"]["server_rss_growth_mb"] < 100
    printed = capsys.readouterr().out
    assert "| change runtime |" in printed and "| upload 0.01 GB, chunked |" in printed
