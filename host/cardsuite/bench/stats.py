"""Statistics shared by the benchmarks: one timing loop and one summary of repeated runs, so that every
figure in build/bench/*.json is computed the same way (same percentile rule, same rounding, same keys)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence

DIGITS = 4  # milliseconds to 0.1 µs: the in-process round trips are a few µs
PERCENTILES = (90, 99)


def ms(seconds: float, digits: int = DIGITS) -> float:
    """Seconds as rounded milliseconds, the unit of every bench figure."""
    return round(seconds * 1000, digits)


def percentile(samples: Sequence[float], p: float) -> float:
    """The sample at rank ⌊p/100 · (n − 1)⌋ of the sorted samples: one of the measured values, never an
    interpolation, so a p99 of 100 runs is the second slowest."""
    if not samples:
        raise ValueError("no samples")
    if not 0 <= p <= 100:
        raise ValueError(f"a percentile is 0..100, got {p}")
    ordered = sorted(samples)
    return ordered[int(p / 100 * (len(ordered) - 1))]


def summary(samples: Sequence[float], percentiles: Iterable[int] = PERCENTILES) -> dict[str, float]:
    """Durations in seconds summarised: count, runs per second, median, mean and the percentiles in ms."""
    if not samples:
        raise ValueError("no samples")
    figures: dict[str, float] = {
        "count": len(samples),
        "per_second": round(len(samples) / sum(samples), 1),
        "median_ms": ms(statistics.median(samples)),
        "mean_ms": ms(statistics.fmean(samples)),
    }
    for p in percentiles:
        figures[f"p{p}_ms"] = ms(percentile(samples, p))
    return figures


def timed(run: Callable[[int], object], count: int) -> list[float]:
    """The duration in seconds of each of ``count`` calls ``run(i)``."""
    clock = time.perf_counter
    samples = []
    for i in range(count):
        started = clock()
        run(i)
        samples.append(clock() - started)
    return samples


def measure_interleaved(cases: dict[str, Callable[[], object]], count: int,
                        warm_up: int = 100) -> dict[str, dict[str, float]]:
    """Times the cases interleaved, one round trip of each in turn, so that load from elsewhere on the
    machine falls on all of them alike and their ratio stays meaningful; a summary per case."""
    for round_trip in cases.values():
        for _ in range(min(warm_up, count)):  # warm-up: JIT, caches
            round_trip()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    clock = time.perf_counter
    for _ in range(count):
        for name, round_trip in cases.items():
            started = clock()
            round_trip()
            samples[name].append(clock() - started)
    return {name: summary(values) for name, values in samples.items()}


__all__ = ["DIGITS", "PERCENTILES", "measure_interleaved", "ms", "percentile", "summary", "timed"]
