"""Benchmarks: `make bench` (python -m bench). Each figure is printed beside its comparator from the same run."""
