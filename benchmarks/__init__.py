"""The benchmark suite: `python -m benchmarks --quick` (checks) or `python -m benchmarks` (full run)."""
