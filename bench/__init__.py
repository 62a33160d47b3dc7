"""Benchmarks (never timed assertions in tests). `make bench` runs them all."""
