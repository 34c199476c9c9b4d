"""Recurrent cells as their equations, the stacks over time and the language model.

Speed paths that wrap the cells live in ``fast/``.
"""
