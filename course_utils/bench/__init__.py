"""Benchmarks: each module prints figures measured in one run and ends with a machine-readable RESULT line."""
