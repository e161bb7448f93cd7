"""Load, test-suite size (bench/load.py runs the full 50 kernels / 20 watchers / 60 s): a gateway
with 10 kernels and 10 metrics watchers (gateway stream and server proxy) for 15 s, with REST
polling alongside: no errors, every watcher gets its samples, memory flat."""

from __future__ import annotations

from bench.load import run, table


def test_kernels_and_watchers_under_load(tmp_path):
    res = run(
        kernels=10, watchers=10, duration=15, interval=0.5, workdir=tmp_path, log=lambda *_: None
    )
    report = table(res)
    assert res["errors"] == 0, f"{res['error_samples']}\n{report}"
    # 0.5 s interval for 15 s: ~30 samples each; allow for a slow shared machine
    assert res["samples_per_watcher"]["min"] >= 20, report
    assert res["max_gap_s"] < 3, report
    assert res["rest_calls"] >= 15, report
    for who in ("gateway", "server"):
        assert res[f"{who}_rss_mb"]["steady_growth"] < 20, report
        assert res[f"{who}_rss_mb"]["growth"] < 40, report
