"""The benchmarks' one statistics API (cardsuite.bench.stats): the percentile rule, the summary's figures,
the interleaved timing loop, that no other bench module computes statistics of its own, and the SCMS bench's
paired ratios."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from cardsuite.bench.scms import Terminal, _LocalDeploys, _paired
from cardsuite.bench.stats import measure_interleaved, ms, percentile, summary, timed
from cardsuite.project import Project

BENCH = Path(__file__).resolve().parents[2] / "host" / "cardsuite" / "bench"


def test_percentile_is_a_measured_sample_at_the_rank_below() -> None:
    samples = [float(n) for n in range(100, 0, -1)]  # 100 runs, unsorted
    assert percentile(samples, 99) == 99.0  # the second slowest of 100
    assert percentile(samples, 90) == 90.0
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 0) == 1.0 and percentile(samples, 100) == 100.0
    assert percentile([0.5], 99) == 0.5
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="0..100"):
        percentile([1.0], 101)


def test_summary_of_durations_in_seconds() -> None:
    samples = [0.001, 0.002, 0.003, 0.004, 0.010]
    assert summary(samples) == {"count": 5, "per_second": 250.0, "median_ms": 3.0, "mean_ms": 4.0,
                                "p90_ms": 4.0, "p99_ms": 4.0}
    assert summary(samples, percentiles=(100,))["p100_ms"] == 10.0
    assert ms(0.00012346) == 0.1235 and ms(1.23456, 1) == 1234.6
    with pytest.raises(ValueError, match="no samples"):
        summary([])


def test_timed_calls_each_index_once() -> None:
    seen: list[int] = []
    samples = timed(seen.append, 5)
    assert seen == [0, 1, 2, 3, 4] and len(samples) == 5 and all(s >= 0 for s in samples)


def test_measure_interleaved_runs_the_cases_in_turn_after_a_warm_up() -> None:
    calls: list[str] = []
    figures = measure_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, warm_up=2)
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3
    assert set(figures) == {"a", "b"} and figures["a"]["count"] == 3 and "p99_ms" in figures["b"]


def test_no_other_bench_module_computes_statistics() -> None:
    offenders = []
    for path in sorted(BENCH.glob("*.py")):
        if path.name == "stats.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if "statistics" in names:
                    offenders.append(f"{path.name}:{node.lineno}: imports statistics")
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and 1000 in (
                    getattr(node.left, "value", None), getattr(node.right, "value", None)):
                offenders.append(f"{path.name}:{node.lineno}: converts to ms itself")
    assert not offenders, "use cardsuite.bench.stats:\n" + "\n".join(offenders)


def test_the_scms_bench_pairs_each_lone_post_issuance_with_the_local_deploy_before_it(project: Project,
                                                                                     tmp_path: Path) -> None:
    """Time per APDU remote over local, pair by pair; a failed post-issuance is no pair."""
    local = _LocalDeploys(project, tmp_path)
    local.seconds, local.counts = [0.2, 0.1, 0.4, 0.2], [100, 100, 100, 100]
    alone = [Terminal(i, None, "token", []) for i in range(4)]  # type: ignore[arg-type]
    for terminal, (seconds, relayed) in zip(alone, [(0.33, 110), (0.22, 110), (0.44, 110), (0.1, 0)], strict=True):
        terminal.seconds, terminal.relayed = seconds, relayed
    alone[3].error = "the request failed"
    assert _paired(alone, local) == {"pairs": 3, "median": 1.5, "p25": 1.0, "p75": 1.5,  # each pair's times kept
                                     "local_ms": [200.0, 100.0, 400.0, 200.0],
                                     "remote_ms": [330.0, 220.0, 440.0, 100.0]}
    alone[0].error = alone[1].error = alone[2].error = "no end"
    assert _paired(alone, local) == {"pairs": 0}
    local.close()
