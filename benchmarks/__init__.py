"""Benchmark suite for tapegrad: run with `python -m benchmarks` from the repo root."""
