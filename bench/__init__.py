"""Benchmarks (run with `make bench`; never timed inside the test suite)."""
