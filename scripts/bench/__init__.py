"""Benchmarks: speed, memory and quality against the peer or a bare baseline, in the same run."""
