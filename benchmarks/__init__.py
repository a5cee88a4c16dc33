"""Benchmark suite for Pigeonhole: speed, scale and accuracy against baselines.

Run it with ``make bench`` or ``python -m benchmarks.run``; see docs/performance.md.
"""
