"""Benchmarks and experiments; run them as modules from the repository root (see README.md)."""
