"""The quick mode of every benchmark runs and prints its figures, so the scripts cannot rot.

Small sizes only (seconds each); the published figures come from the full runs (`python -m benchmarks`).
The API load test serves the app in a separate process and drives it at a low fixed rate.
"""

from __future__ import annotations

import pytest

from benchmarks import __main__ as bench
from benchmarks import api_load, extraction, refresh, scaling
from benchmarks import indicators as indicator_bench
from benchmarks.loadgen import summarise

pytestmark = pytest.mark.slow


def test_every_benchmark_has_a_quick_mode():
    assert set(bench.PLAN) == {"indicators", "extraction", "api", "refresh", "scaling"}


def test_timed_together_runs_the_functions_in_turn_and_keeps_each_best():
    from benchmarks.common import timed_together

    calls: list[str] = []

    def make(name: str):
        def func():
            calls.append(name)
            return len(calls)

        return func

    out = timed_together({"a": make("a"), "b": make("b")}, rounds=3, runs={"a": 2})
    assert calls == ["a", "a", "b"] * 3
    assert out["a"][0] == 1 and out["b"][0] == 3  # each one's first result
    assert all(0 <= t < 1 for _, t in out.values())


def test_indicators_quick(capsys):
    indicator_bench.main(bench.PLAN["indicators"][2])
    assert "reduction suite" in capsys.readouterr().out


def test_extraction_quick(capsys):
    extraction.main(bench.PLAN["extraction"][2])
    assert "ratio loop / extract" in capsys.readouterr().out


def test_api_load_quick(capsys):
    figures = api_load.main(bench.PLAN["api"][2])
    assert figures["requests"] == 40
    assert figures["errors"] == 0 and figures["non_2xx"] == 0, figures["statuses"]
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert "p99" in capsys.readouterr().out


def test_refresh_quick(capsys):
    figures = refresh.main(bench.PLAN["refresh"][2])
    assert figures["failed"] == []
    assert figures["values"] > 0 and figures["peak_rss_mib"] > 0
    # two passes, each from the same prepared state: the same work, so the same values written
    assert figures["runs_values"] == [figures["values"]] * 2
    assert len(figures["runs_s"]) == 2 and figures["wall_s"] == min(figures["runs_s"])
    assert figures["slowest_s"] == max(figures["runs_s"])
    out = capsys.readouterr().out
    assert "daily refresh of 2025-03-01" in out and "2 runs from the same prepared state" in out


def test_scaling_growth_factor():
    assert scaling.growth([1.0, 10.0, 50.0]) == "×10.0, ×5.0"


def test_scaling_quick(capsys):
    figures = scaling.main(["--sites", "20", "200", "--years", "1", "--skip-refresh", "--rounds", "2"])
    assert len(figures["indicators"]) == len(figures["extraction_warm"]) == 2
    out = capsys.readouterr().out
    assert "round 2/2, 200 sites" in out and "best of 2 rounds" in out and "growth" in out


def test_loadgen_counts_errors_and_non_2xx_and_measures_from_the_due_instant():
    # (latency, send lag, status, done) per request; latencies are from the due instant
    results = [(0.010, 0.0, 200, 1.0), (0.020, 0.001, 503, 1.1), (0.5, 0.4, "ConnectError", 1.2)]
    f = summarise(results, rate=3.0, duration=1.0, t0=0.2)
    assert (f["errors"], f["non_2xx"], f["requests"]) == (1, 1, 3)
    assert f["max_ms"] == pytest.approx(500.0)
    assert f["achieved_rate"] == pytest.approx(3.0)
