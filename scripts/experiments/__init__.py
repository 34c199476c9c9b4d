"""Experiments: the result tables and figures of the README/docs."""
