"""Benchmarks: figures into build/bench/."""
