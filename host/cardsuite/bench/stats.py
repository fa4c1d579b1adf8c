"""Statistics shared by the benchmarks: medians and percentiles of repeated runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def _figures(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "count": len(samples),
        "round_trips_per_second": round(len(samples) / sum(samples), 1),
        "median_ms": round(statistics.median(samples) * 1000, 4),
        "p99_ms": round(samples[int(0.99 * (len(samples) - 1))] * 1000, 4),
    }


def _measure(cases: dict[str, Callable[[], object]], count: int) -> dict[str, dict[str, float]]:
    """Times the cases interleaved, one round trip of each in turn, so that load from elsewhere on the
    machine falls on all of them alike and their ratio stays meaningful."""
    for round_trip in cases.values():
        for _ in range(min(100, count)):  # warm-up: JIT, caches
            round_trip()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    clock = time.perf_counter
    for _ in range(count):
        for name, round_trip in cases.items():
            started = clock()
            round_trip()
            samples[name].append(clock() - started)
    return {name: _figures(values) for name, values in samples.items()}
