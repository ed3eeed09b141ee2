"""Benchmark scripts (not timed tests): run against the real local stack, print and save results."""
